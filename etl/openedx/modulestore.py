"""Write a video block's ``edx_video_id`` through the modulestore, the one write the tool makes there (--mint-ids).

One small adapter, two sides. In Studio (``Studio``), the platform's own
``modulestore()`` API, line by line as edx-platform's 2018 ``migrate_transcripts``
wrote it (``async_migrate_transcript_subtask``): get the block at its revision,
set ``edx_video_id``, and ``update_item`` it as the management-command user under
the branch setting of that revision, published only or draft preferred. One
departure: a block with no pending change is written in its draft and then that
block alone is published, so that Studio shows no unpublished change it did not
have (split compares the two branches' block versions); a block with pending
changes is written in each branch and never published. Elsewhere (the tests), a
stand-in that writes split's documents as split does: Django's setting
``TRANSCRIPT_ETL_MODULESTORE`` names its class. Reading stays the tool's own,
index-served (``etl.source.modulestore``).
"""

from django.conf import settings
from django.utils.module_loading import import_string

from etl.model.layout import parse_course_id
from etl.source import modulestore as reader


class Changed(Exception):
    """The block holds another id than the write expected: an author changed it, or another run did."""

    def __init__(self, course_id, usage_key, branch, found):
        super().__init__(f"course {course_id}: {usage_key} ({branch}) holds edx_video_id {found!r} now, not the one "
                         "this run expected; it is left as it is")
        self.found = found


def adapter(cfg):
    """Return the modulestore adapter this process writes through: Studio's own, or the one the settings name."""
    return import_string(getattr(settings, "TRANSCRIPT_ETL_MODULESTORE", "etl.openedx.modulestore.Studio"))(cfg)


class Studio:
    """The platform's modulestore, as Studio writes a block (needs openedx-platform: run it in Studio)."""

    def __init__(self, cfg):
        self.cfg = cfg

    def set_video_id(self, course_id, usage_key, branch, video_id, expected=""):
        """Set a block's ``edx_video_id`` in one branch, if it holds ``expected``; return the branch's new head.

        Raise ``Changed`` when the block holds another id: an author's, or another run's.
        """
        from opaque_keys.edx.keys import UsageKey
        from xmodule.modulestore import ModuleStoreEnum
        from xmodule.modulestore.django import modulestore

        store = modulestore()
        revision, branch_setting = ((ModuleStoreEnum.RevisionOption.published_only,
                                     ModuleStoreEnum.Branch.published_only) if branch == "published" else
                                    (ModuleStoreEnum.RevisionOption.draft_only, ModuleStoreEnum.Branch.draft_preferred))
        video = store.get_item(UsageKey.from_string(usage_key), revision=revision)
        if (video.edx_video_id or "").strip() != expected:
            raise Changed(course_id, usage_key, branch, video.edx_video_id)
        video.edx_video_id = video_id
        with store.branch_setting(branch_setting, video.location.course_key):
            store.update_item(video, ModuleStoreEnum.UserID.mgmt_command)
        return str(reader.heads(self.cfg, parse_course_id(course_id))[branch])

    def publish(self, course_id, usage_key, draft_head):
        """Publish one block (a video: no children) whose draft is the one this run just wrote; return the new head.

        Only for a block with no pending change but this run's own: Studio's
        publish copies the draft block, so the unit shows no unpublished change.
        Raise ``Changed`` when the draft branch moved since ``draft_head``.
        """
        from opaque_keys.edx.keys import UsageKey
        from xmodule.modulestore import ModuleStoreEnum
        from xmodule.modulestore.django import modulestore

        course = parse_course_id(course_id)
        if str(reader.heads(self.cfg, course).get("draft")) != draft_head:
            raise Changed(course_id, usage_key, "draft", "(a newer draft)")
        modulestore().publish(UsageKey.from_string(usage_key), ModuleStoreEnum.UserID.mgmt_command)
        return str(reader.heads(self.cfg, course)["published"])
