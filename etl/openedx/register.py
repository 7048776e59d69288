"""Register a committed course's hand-off rows in edx-val, in place, all or none; undo exactly a receipt's rows.

Each ``ok`` row of the course's hand-off (``etl.handoff``) becomes a
VideoTranscript through edx-val's own API with ``file_data=None``, so the row
names the live object already in the bucket and nothing is uploaded. The names
are taken relative to the location of the storage edx-val actually reads with.
Nothing here ever creates or changes a Video, overwrites a VideoTranscript,
writes the modulestore, or deletes an object in S3 (``delete_video_transcript``
would delete the object itself: an undo deletes the rows through the ORM).
"""

from dataclasses import dataclass, field

from django.db import transaction
from edxval import api
from edxval.models import Video, VideoTranscript

from etl.handoff import MAX_NAME, commit_identity, read as read_handoff, storage_name
from etl.model.errors import NotCommitted, Refused, UsageError
from etl.model.layout import parse_course_id
from etl.protocol import marker, receipts
from etl.protocol.known import closest, refuse_unknown, table_ids
from etl.protocol.state import iso, now
from etl.store import pool, s3

PROVIDER = "Custom"  # what Studio's own upload records


@dataclass
class Plan:
    """What registering (or undoing) one course does: the rows to act on, and each row skipped with its reason."""

    course_id: str
    epoch: int = 0
    act: list = field(default_factory=list)  # dicts: edx_video_id, language, storage_name, file_format, live_key
    skip: list = field(default_factory=list)  # (row, reason)
    before: list = field(default_factory=list)  # edx-val rows found in place, left untouched
    receipt: tuple = ()  # for an undo: (key, receipt, ETag) of each live receipt


def location():
    """Return the location of the storage edx-val reads transcripts with ('' for the bucket's root)."""
    storage = VideoTranscript._meta.get_field("transcript").storage
    return (getattr(storage, "location", "") or "").strip("/")


def plan(cfg, course_id):
    """Plan a course's registration, refusing a course that is not committed, a stale hand-off and bad objects."""
    course = parse_course_id(course_id)
    (seen, (df, meta)) = pool.together(lambda: marker.read(cfg, course), lambda: read_handoff(cfg, course))
    commit = seen.commit
    if commit is None:
        if cfg.contentstore is not None:  # with the modulestore at hand, a misspelled id is told apart
            refuse_unknown(cfg, [course_id])
        hint = closest(str(course), table_ids(cfg))  # else the closest id the status table has, if any is close
        raise NotCommitted(f"course {course} is not committed{hint}; nothing was registered; run `python -m etl "
                           f"migrate {course}`, then `python -m etl handoff {course}`")
    if df is None:
        raise UsageError(f"course {course} has no hand-off; nothing was registered; run `python -m etl handoff "
                         f"{course}` first")
    current = commit_identity(cfg, course, commit)
    epoch = int(current[0])
    if (meta.get("epoch"), meta.get("manifest_key"), meta.get("manifest_sha256")) != current:
        raise Refused(f"course {course}: its hand-off is stale (epoch {meta.get('epoch')}, the commit is epoch "
                      f"{epoch}); nothing was registered; run `python -m etl handoff {course}` again")
    result, where = Plan(str(course), epoch), location()
    # edx-val keeps one row per video and language: the published branch's, where both branches resolve one.
    ok = df[df["status"] == "ok"].sort_values(["edx_video_id", "language", "branch"], ascending=[True, True, False])
    for row in df[df["status"] != "ok"].drop_duplicates(["usage_key", "language", "status"]).to_dict("records"):
        result.skip.append((row, row["status"]))
    for row in ok.drop_duplicates(["edx_video_id", "language"]).to_dict("records"):
        name = storage_name(row["live_key"], where)
        if name is None:
            result.skip.append((row, f"outside edx-val's storage location {where!r}"))
        elif len(name) > MAX_NAME:
            result.skip.append((row, "name_too_long"))
        else:
            result.act.append(dict(edx_video_id=row["edx_video_id"], language=row["language"], storage_name=name,
                                   file_format=row["file_format"], live_key=row["live_key"], md5=row["md5"]))
    _check_objects(cfg, course, result.act)
    _check_val(result)
    return result


def _check_objects(cfg, course, rows):
    found = pool.run_all(cfg, lambda r: s3.md5_of(cfg, r["live_key"]), rows)
    bad = [r["live_key"] for r, md5 in zip(rows, found) if md5 != r["md5"]]
    if bad:
        raise Refused(f"course {course}: {len(bad)} live object(s) are missing or differ from the manifest, e.g. "
                      f"{bad[0]}; nothing was registered; run `python -m etl verify {course}`")


def _check_val(result):
    """Move to ``skip`` every row whose Video edx-val lacks, or whose VideoTranscript it already has."""
    keep = []
    for row in result.act:
        existing = VideoTranscript.objects.filter(video__edx_video_id=row["edx_video_id"],
                                                  language_code=row["language"]).first()
        if existing is not None:
            result.skip.append((row, "val_row_exists"))
            result.before.append(dict(edx_video_id=row["edx_video_id"], language=row["language"],
                                      storage_name=existing.transcript.name, file_format=existing.file_format))
        elif not Video.objects.filter(edx_video_id=row["edx_video_id"]).exists():
            result.skip.append((row, "val_video_missing"))
        else:
            keep.append(row)
    result.act = keep


def commit(cfg, result):
    """Register every planned row in one database transaction, its receipt written before it commits."""
    course = parse_course_id(result.course_id)
    with transaction.atomic():
        for row in result.act:
            url = api.create_or_update_video_transcript(
                row["edx_video_id"], row["language"], file_data=None,
                metadata={"file_name": row["storage_name"], "file_format": row["file_format"],
                          "language_code": row["language"], "provider": PROVIDER})
            if url is None:  # the Video went away since the plan: none of the course's rows may stay
                raise Refused(f"course {course}: edx-val has no video {row['edx_video_id']} any more; nothing was "
                              "registered; re-run")
        if result.act:
            receipts.write(cfg, course, {
                "course_id": str(course), "epoch": result.epoch, "registered": result.act, "before": result.before,
                "created_at": iso(now()), "undone_at": None})


def plan_undo(cfg, course_id):
    """Plan removing exactly the rows of the course's live receipts that still name what was registered."""
    course = parse_course_id(course_id)
    result = Plan(str(course))
    result.receipt = tuple(receipts.live(cfg, course))
    for _, receipt, _ in result.receipt:
        for row in receipt.get("registered") or []:
            current = VideoTranscript.objects.filter(video__edx_video_id=row["edx_video_id"],
                                                     language_code=row["language"]).first()
            if current is None:
                result.skip.append((row, "already gone"))
            elif current.transcript.name != row["storage_name"]:
                result.skip.append((row, f"changed since registration (now {current.transcript.name}); left"))
            else:
                result.act.append(dict(row, pk=current.pk))
    return result


def commit_undo(cfg, result):
    """Delete the planned rows through the ORM (never their objects), then mark the receipts undone."""
    course = parse_course_id(result.course_id)
    with transaction.atomic():
        VideoTranscript.objects.filter(pk__in=[row["pk"] for row in result.act]).delete()
        for key, receipt, tag in result.receipt:
            receipts.mark_undone(cfg, course, key, receipt, tag)
