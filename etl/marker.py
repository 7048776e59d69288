"""The commit marker key, ``{live}/{course}/_MIGRATED.json``: the one place that decides "committed".

The key holds nothing, a *fence*, or a *commit*. Every write to it is
conditional on the version the writer last saw, so the key's versions form one
chain that every runner agrees on:

- a runner that claims a course installs its own fence, conditional on the
  version it read before its claim (``fence``); the fence's ETag is its token;
- promote commits by replacing its own fence, ``If-Match`` on its token
  (``commit``). Any later claim has replaced that fence, so a runner that froze
  and lost its claim can never commit: its token no longer matches;
- only ``rollback --force`` replaces a commit (``fence(..., uncommit=True)``).

A reader asks ``committed``: a commit marker has ``"status": "committed"``
(markers of format 1, from 0.1.0, have no status and are commits too); a fence
has ``"status": "fenced"`` and means "not committed".
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from . import s3
from .errors import ConcurrentRun
from .layout import Layout, parse_course_id

FENCED, COMMITTED = "fenced", "committed"
META_STATUS = "etl-marker"  # user metadata, so a HEAD tells a fence from a commit


@dataclass(frozen=True)
class Seen:
    """What a runner saw at the marker key: the document and its ETag, or nothing."""

    doc: Optional[dict] = None
    etag: Optional[str] = None
    meta: dict = field(default_factory=dict)

    @property
    def committed(self):
        return is_commit(self.doc)


def is_commit(doc):
    """Tell whether a marker document is a commit (and not a fence, or nothing)."""
    return doc is not None and doc.get("status", COMMITTED) != FENCED


def read(cfg, course):
    """Return what is at the course's marker key now, as a ``Seen``."""
    data, tag, meta = s3.fetch(cfg, Layout(cfg, course).marker)
    return Seen(json.loads(data), tag, meta) if data is not None else Seen()


def committed(cfg, course):
    """Return the course's commit marker document, or None when the course is not committed.

    ``course`` is a course id or a parsed ``CourseKey``. This is the question a
    Phase II reader asks, answered the way the tool answers it everywhere.
    """
    seen = read(cfg, parse_course_id(course) if isinstance(course, str) else course)
    return seen.doc if seen.committed else None


def head_committed(head):
    """Tell from a HEAD of the marker key whether it holds a commit."""
    return head is not None and head.get("Metadata", {}).get(META_STATUS) != FENCED


def is_committed(cfg, course):
    """Tell whether the course is committed with one HEAD, when the marker's document is not needed."""
    return head_committed(s3.head(cfg, Layout(cfg, course).marker))


def _meta(course, run_id, status):
    return dict(s3.tool_metadata(course, run_id), **{META_STATUS: status})


def fence(cfg, course, run_id, seen, uncommit=False):
    """Replace what ``seen`` found at the marker key with this run's fence; return its ETag (the token).

    The write is conditional on ``seen``, so it fails when anyone wrote the key
    since. A commit is replaced only with ``uncommit``. Raise PreconditionFailed
    when the key changed since ``seen``.
    """
    if seen.committed and not uncommit:
        raise ValueError("a commit is replaced only by a forced rollback")
    # The previous ETag makes every fence's bytes unique, so a retried put can recognise its own write.
    doc = {"format": 2, "status": FENCED, "course_id": str(course), "run_id": run_id,
           "fenced_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "after": seen.etag}
    return s3.put_json(cfg, Layout(cfg, course).marker, doc, metadata=_meta(course, run_id, FENCED),
                       if_none_match=seen.etag is None, if_match=f'"{seen.etag}"' if seen.etag else None)


def commit(cfg, course, run_id, token, doc):
    """Replace this run's fence with its commit marker; return (marker document, its ETag).

    Raise ConcurrentRun if the fence is not this run's any more.
    """
    doc = dict(doc, format=2, status=COMMITTED)
    try:
        tag = s3.put_json(cfg, Layout(cfg, course).marker, doc, metadata=_meta(course, run_id, COMMITTED),
                          if_match=f'"{token}"')
    except s3.PreconditionFailed:
        raise ConcurrentRun(f"course {course}: another runner claimed it while run {run_id} was paused "
                            "(its lease had expired), so this run did not commit; check "
                            "`python -m etl status`, and re-run migrate if the course is not promoted") from None
    return doc, tag


def unfence(cfg, course, token):
    """Remove this run's own fence (rollback leaves S3 as it was); a fence replaced since stays."""
    try:
        s3.delete_if_match(cfg, Layout(cfg, course).marker, token)
    except s3.PreconditionFailed:
        pass
