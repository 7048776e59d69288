"""Reach edx-val as Studio and the LMS reach it: its API, its models and the storage it is configured with."""

import hashlib
import uuid

from django.core.files.base import ContentFile
from edxval import api, utils
from edxval.models import CourseVideo, Video, VideoTranscript

PROVIDER = "Custom"  # what Studio's own upload records
EXTERNAL = "external"  # the status edx-val's import gives a Video it creates for an id it does not know


def storage():
    """Return the storage edx-val keeps transcripts in."""
    return VideoTranscript._meta.get_field("transcript").storage


def rows(video_id, language, lock=False):
    """Return the VideoTranscripts of a video in ``language``, any case: MySQL's collation makes them one row.

    With ``lock``, inside a transaction, the rows are selected for update, and on
    MySQL the unique index's gap is locked too, so no other writer can add one
    before the transaction ends.
    """
    found = VideoTranscript.objects.filter(video__edx_video_id=video_id, language_code__iexact=language)
    return list(found.select_for_update() if lock else found)


def current(row):
    """Return the VideoTranscript a receipt's row names by video and exact language, or None when it is gone."""
    return next((r for r in rows(row["edx_video_id"], row["language"]) if r.language_code == row["language"]), None)


def rows_by_pk(pks):
    """Return the VideoTranscripts with these primary keys, as a queryset."""
    return VideoTranscript.objects.filter(pk__in=pks)


def has_video(video_id):
    """Say whether edx-val has a Video with this id."""
    return Video.objects.filter(edx_video_id=video_id).exists()


def create_video(video_id):
    """Create the external Video edx-val's import creates for an id it does not know (no course, no encodes)."""
    return api.create_video({"edx_video_id": video_id, "client_video_id": "External Video", "duration": 0,
                             "status": EXTERNAL, "encoded_videos": [], "courses": []})


def planned_name(file_format):
    """Return (the file name to give edx-val, the name its storage will keep the copy under).

    The same shape edx-val gives Studio's uploads (a random hex name under its
    DIRECTORY_PREFIX), chosen before the upload so that a receipt can name the
    copy before it exists.
    """
    name = f"{uuid.uuid4().hex}.{file_format}"
    return name, utils.video_transcript_path(None, name)


def upload(video_id, language, data, file_format, file_name):
    """Create a VideoTranscript through edx-val's upload path; return the name edx-val saved its copy under.

    edx-val owns the copy from then on.
    """
    url = api.create_or_update_video_transcript(video_id, language, file_data=ContentFile(data),
                                                metadata={"provider": PROVIDER, "file_format": file_format,
                                                          "language_code": language, "file_name": file_name})
    if url is None:
        raise LookupError(f"edx-val has no Video {video_id} (deleted since the plan?)")
    return VideoTranscript.objects.get(video__edx_video_id=video_id, language_code=language).transcript.name


def held(name):
    """Tell whether any VideoTranscript row names this copy."""
    return VideoTranscript.objects.filter(transcript=name).exists()


def exists(name):
    """Tell whether edx-val's storage holds a copy by this name."""
    return storage().exists(name)


def served(video_id, language):
    """Return the bytes edx-val's API serves for the pair, or None when it has none or cannot read them."""
    try:
        found = api.get_video_transcript_data(video_id, language)
    except Exception:  # edx-val logs it; the LMS would answer 500
        return None
    if not found:
        return None
    content = found["content"]
    return content.encode() if isinstance(content, str) else content


def md5(data):
    """Return the hex MD5 of bytes, or None for None."""
    return hashlib.md5(data).hexdigest() if data is not None else None


def discard(names):
    """Delete copies this plugin saved in edx-val's storage and no row names; return those that would not go."""
    left = []
    for name in names:
        try:
            storage().delete(name)
        except Exception:
            left.append(name)
    return left


class View:
    """edx-val as the LMS reads it (``etl.source.lms``): its languages and transcripts, and its course links."""

    def languages(self, video_id):
        return api.get_available_transcript_languages(video_id)

    def data(self, video_id, language):
        return api.get_video_transcript_data(video_id, language)

    def courses(self, video_id):
        return sorted({str(c) for c in CourseVideo.objects.filter(video__edx_video_id=video_id)
                       .values_list("course_id", flat=True)})


def other_courses(video_id, course_id):
    """Return the other courses edx-val links to the video, sorted."""
    return sorted({str(c) for c in CourseVideo.objects.filter(video__edx_video_id=video_id)
                   .exclude(course_id=course_id).values_list("course_id", flat=True)})
