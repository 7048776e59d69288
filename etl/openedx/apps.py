"""The Django app Open edX's plugin system installs in Studio through the ``cms.djangoapp`` entry point."""

from django.apps import AppConfig


class TranscriptEtlConfig(AppConfig):
    """The transcript ETL's Open edX plugin: it only adds the ``transcript_etl_register`` management command."""

    name = "etl.openedx"
    label = "transcript_etl"
    verbose_name = "Transcript ETL hand-off"
    default_auto_field = "django.db.models.AutoField"
    # edx-django-utils' plugin registry reads this; the app needs no settings, URLs or signals of its own.
    plugin_app = {}
