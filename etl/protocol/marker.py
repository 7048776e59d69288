"""The commit key, ``{live}/{course}/_COMMIT.json``: the one place that decides "committed".

The key holds nothing, a *fence*, or a *commit*. Every write to it is
conditional on the version the writer last saw, so the key's versions form one
chain that every runner agrees on:

- a runner that claims a course installs its own fence, conditional on the
  version it read before its claim (``fence``); the fence's ETag is its token,
  and the fence names the runner's epoch;
- promote commits by replacing its own fence, ``If-Match`` on its token
  (``commit``). Any later claim has replaced that fence, so a runner that froze
  and lost its claim can never commit: its token no longer matches;
- only ``rollback --force`` replaces a commit (``fence(..., uncommit=True)``).

A commit names its epoch and where that epoch's objects are
(``transcripts_prefix``, ``manifest_key``): readers follow it, never a fixed key.

Versions 0.1.0 to 0.3.0 wrote the same documents at ``_MIGRATED.json`` and kept
their transcripts under ``{live}/{course}/transcripts/`` (epoch 0). That key is
still read: it decides while ``_COMMIT.json`` does not exist, and any object at
``_COMMIT.json`` (a fence included) overrides it.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from etl.model.errors import ConcurrentRun
from etl.model.layout import Layout, parse_course_id
from etl.store import pool, s3


FENCED, COMMITTED = "fenced", "committed"
META_STATUS = "etl-marker"  # user metadata, so a HEAD tells a fence from a commit


@dataclass(frozen=True)
class Seen:
    """What a runner saw at the commit key: the document and its ETag, or nothing; and the 0.3.0 key under it."""

    doc: Optional[dict] = None
    etag: Optional[str] = None
    meta: dict = field(default_factory=dict)
    legacy: Optional["Seen"] = None  # what ``_MIGRATED.json`` holds, when ``_COMMIT.json`` does not exist

    @property
    def committed(self):
        return self.commit is not None

    @property
    def commit(self):
        """Return the commit document that decides, or None."""
        if is_commit(self.doc):
            return self.doc
        return self.legacy.commit if self.doc is None and self.legacy is not None else None

    @property
    def epoch(self):
        """Return the epoch named at the key (0 for 0.3.0's documents, which name none), or None for nothing."""
        doc = self.doc if self.doc is not None else (self.legacy.doc if self.legacy is not None else None)
        return None if doc is None else int(doc.get("epoch", 0))

    @property
    def committed_epoch(self):
        """Return the committed epoch, or None when nothing is committed."""
        doc = self.commit
        return None if doc is None else int(doc.get("epoch", 0))


def transcripts_prefix(cfg, course, doc):
    """Return where a commit's transcripts live: its ``transcripts_prefix``, or 0.3.0's fixed one."""
    return doc.get("transcripts_prefix") or Layout(cfg, course).legacy_transcripts


def manifest_key(cfg, course, doc):
    """Return the key of a commit's live manifest."""
    return doc.get("manifest_key") or Layout(cfg, course).legacy_manifest


def is_commit(doc):
    """Tell whether a marker document is a commit (and not a fence, or nothing)."""
    return doc is not None and doc.get("status", COMMITTED) != FENCED


def _seen(fetched):
    data, tag, meta = fetched
    return Seen(json.loads(data), tag, meta) if data is not None else Seen()


def read(cfg, course):
    """Return what is at the course's commit key now, with the 0.3.0 key read alongside, as a ``Seen``."""
    layout = Layout(cfg, course)
    new, old = pool.together(lambda: s3.fetch(cfg, layout.marker), lambda: s3.fetch(cfg, layout.legacy_marker))
    seen = _seen(new)
    return seen if seen.doc is not None or old[0] is None else Seen(legacy=_seen(old))


def committed(cfg, course):
    """Return the course's commit marker document, or None when the course is not committed.

    ``course`` is a course id or a parsed ``CourseKey``. This is the question a
    Phase II reader asks, answered the way the tool answers it everywhere.
    """
    return read(cfg, parse_course_id(course) if isinstance(course, str) else course).commit


def head_committed(head):
    """Tell from a HEAD of a marker key whether it holds a commit."""
    return head is not None and head.get("Metadata", {}).get(META_STATUS) != FENCED


def is_committed(cfg, course):
    """Tell whether the course is committed from HEADs, when the marker's document is not needed."""
    layout = Layout(cfg, course)
    new, old = pool.together(lambda: s3.head(cfg, layout.marker), lambda: s3.head(cfg, layout.legacy_marker))
    return head_committed(new) if new is not None else head_committed(old)


def _meta(course, run_id, status):
    return dict(s3.tool_metadata(course, run_id), **{META_STATUS: status})


def fence(cfg, course, run_id, epoch, seen, uncommit=False):
    """Replace what ``seen`` found at the commit key with this epoch's fence; return its ETag (the token).

    The write is conditional on ``seen``, so it fails when anyone wrote the key
    since. A commit is replaced only with ``uncommit``; a fence over a 0.3.0
    commit at ``_MIGRATED.json`` uncommits it the same way, since any object at
    ``_COMMIT.json`` overrides that key. Raise PreconditionFailed when the key
    changed since ``seen``.
    """
    if seen.committed and not uncommit:
        raise ValueError("a commit is replaced only by a forced rollback")
    # The epoch and the previous ETag make every fence's bytes unique, so a retried put can recognise its own write.
    doc = {"format": 3, "status": FENCED, "course_id": str(course), "run_id": run_id, "epoch": epoch,
           "fenced_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "after": seen.etag}
    return s3.put_json(cfg, Layout(cfg, course).marker, doc, metadata=_meta(course, run_id, FENCED),
                       if_none_match=seen.etag is None, if_match=f'"{seen.etag}"' if seen.etag else None)


def commit(cfg, course, run_id, token, doc):
    """Replace this run's fence with its commit marker; return (marker document, its ETag).

    Raise ConcurrentRun if the fence is not this run's any more.
    """
    doc = dict(doc, format=3, status=COMMITTED)
    try:
        tag = s3.put_json(cfg, Layout(cfg, course).marker, doc, metadata=_meta(course, run_id, COMMITTED),
                          if_match=f'"{token}"')
    except s3.PreconditionFailed:
        raise ConcurrentRun(f"course {course}: another runner claimed it while run {run_id} was paused "
                            "(its lease had expired), so this run did not commit; check "
                            "`python -m etl status`, and re-run migrate if the course is not promoted") from None
    return doc, tag


def unfence(cfg, course, token):
    """Remove this run's own fence (rollback leaves S3 as it was); a fence replaced since stays.

    While a 0.3.0 ``_MIGRATED.json`` exists the fence stays too: removing it
    would hand the decision back to that key, which may hold a commit whose
    transcripts a forced rollback has begun to delete.
    """
    layout = Layout(cfg, course)
    if s3.head(cfg, layout.legacy_marker) is not None:
        return
    try:
        s3.delete_if_match(cfg, layout.marker, token)
    except s3.PreconditionFailed:
        pass
