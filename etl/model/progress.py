"""Show progress: a tqdm bar on a terminal, nothing otherwise (the log has one line per event)."""

import sys

from tqdm import tqdm


LARGE_COURSE = 1000  # transcripts: smaller courses get no bar of their own


def bar(cfg, total, desc, unit="transcript", min_total=1, leave=False):
    """Return a progress bar, disabled unless enabled in cfg or stderr is a terminal, or below ``min_total``.

    ``leave`` keeps the finished bar on screen (N/N), as the batch's bar does; a
    course's own bar goes when the course is done.
    """
    enabled = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled or total < max(min_total, 1),
                leave=leave, dynamic_ncols=True, file=sys.stderr)
