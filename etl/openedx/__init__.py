"""Register migrated transcripts in Open edX's edx-val, in place: a Django app for Studio (the ``[openedx]`` extra)."""
