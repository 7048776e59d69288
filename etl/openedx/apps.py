"""The Django app Open edX's plugin system installs in Studio and the LMS (``cms.djangoapp``, ``lms.djangoapp``)."""

from django.apps import AppConfig


class TranscriptEtlConfig(AppConfig):
    """The transcript ETL's Open edX plugin: ``transcript_etl_register`` (Studio), ``transcript_etl_check`` (LMS)."""

    name = "etl.openedx"
    label = "transcript_etl"
    verbose_name = "Transcript ETL hand-off"
    default_auto_field = "django.db.models.AutoField"
    # edx-django-utils' plugin registry reads this; the app needs no settings, URLs or signals of its own.
    plugin_app = {}
