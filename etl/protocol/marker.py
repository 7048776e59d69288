"""The commit key, ``{live}/{course}/_COMMIT.json``: the one place that decides "committed".

The key holds nothing, a *fence*, a *commit* or a *release*. Every write to it
is a conditional PUT on the version the writer last saw, and the tool never
deletes it, so the key's versions form one chain that every runner agrees on,
whether or not the store honours conditions on DELETE:

- a runner that claims a course installs its own fence, conditional on the
  version it read before its claim (``fence``); the fence's ETag is its token,
  and the fence names the runner's epoch;
- promote commits by replacing its own fence, ``If-Match`` on its token
  (``commit``). Any later claim has replaced that fence, so a runner that froze
  and lost its claim can never commit: its token no longer matches;
- a run that ends without committing (a failure, an undo, a rollback) replaces
  its own fence with a release (``release``), which readers read as not
  committed; a request of that run still in flight can then never commit;
- a runner that repairs a lagging record over a commit rewrites the commit with
  a new nonce (``reassert``), so a stale runner's fence, conditional on the ETag
  it read before, fails;
- only ``rollback --force`` replaces a commit (``fence(..., uncommit=True)``).

Every document written here is byte-unique (run id, epoch and a nonce), so no
rewrite can reproduce an ETag another runner read. An object at the key that
the tool did not write is ``foreign``: every claim refuses it.

A commit names its epoch and where that epoch's objects are
(``transcripts_prefix``, ``manifest_key``): readers follow it, never a fixed key.

Versions 0.1.0 to 0.3.0 wrote the same documents at ``_MIGRATED.json`` and kept
their transcripts under ``{live}/{course}/transcripts/`` (epoch 0). That key is
still read: it decides while ``_COMMIT.json`` does not exist, and any object at
``_COMMIT.json`` (a fence included) overrides it.
"""

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

from etl.model.errors import ConcurrentRun
from etl.model.layout import Layout, parse_course_id
from etl.store import pool, s3


FENCED, COMMITTED, RELEASED = "fenced", "committed", "released"
META_STATUS = "etl-marker"  # user metadata, so a HEAD tells a fence from a commit


@dataclass(frozen=True)
class Seen:
    """What a runner saw at the commit key: the document and its ETag, or nothing; and the 0.3.0 key under it."""

    doc: Optional[dict] = None
    etag: Optional[str] = None
    meta: dict = field(default_factory=dict)
    legacy: Optional["Seen"] = None  # what ``_MIGRATED.json`` holds, when ``_COMMIT.json`` does not exist
    foreign: Optional[str] = None  # "KEY (N bytes)" when the key holds an object the tool did not write

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
    def holds(self):
        """Name what decides at the key: nothing, fence, release, commit, legacy commit or foreign."""
        if self.foreign:
            return "foreign"
        if self.doc is None:
            return "legacy commit" if self.legacy is not None and self.legacy.committed else "nothing"
        return "commit" if is_commit(self.doc) else self.doc.get("status", "")

    def is_run(self, run_id, epoch):
        """Tell whether the document at the key was written by run ``run_id`` in ``epoch``."""
        return self.doc is not None and self.doc.get("run_id") == run_id and self.epoch == epoch

    @property
    def committed_epoch(self):
        """Return the committed epoch, or None when nothing is committed."""
        doc = self.commit
        return None if doc is None else int(doc.get("epoch", 0))


def transcripts_prefix(cfg, course, doc):
    """Return where a commit's transcripts live: its ``transcripts_prefix``, or 0.3.0's fixed one."""
    return doc.get("transcripts_prefix") or Layout.of(cfg, course).legacy_transcripts


def manifest_key(cfg, course, doc):
    """Return the key of a commit's live manifest."""
    return doc.get("manifest_key") or Layout.of(cfg, course).legacy_manifest


def is_commit(doc):
    """Tell whether a marker document is a commit (and not a fence, a release, or nothing).

    Documents of 0.3.0 and earlier carry no status and are commits.
    """
    return doc is not None and doc.get("status", COMMITTED) == COMMITTED


def _seen(cfg, course, key, fetched):
    data, tag, meta = fetched
    if data is None:
        return Seen()
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not s3.written_by_tool({"Metadata": meta}, course):
        return Seen(etag=tag, meta=meta or {}, foreign=f"s3://{cfg.bucket}/{key} ({len(data)} bytes)")
    return Seen(doc, tag, meta)


def read(cfg, course):
    """Return what is at the course's commit key now, with the 0.3.0 key read alongside, as a ``Seen``."""
    layout = Layout.of(cfg, course)
    new, old = pool.together(lambda: s3.fetch(cfg, layout.marker), lambda: s3.fetch(cfg, layout.legacy_marker))
    seen = _seen(cfg, course, layout.marker, new)
    if seen.doc is not None or seen.foreign or old[0] is None:
        return seen
    legacy = _seen(cfg, course, layout.legacy_marker, old)
    return Seen(legacy=legacy, foreign=legacy.foreign)


def committed(cfg, course):
    """Return the course's commit marker document, or None when the course is not committed.

    ``course`` is a course id or a parsed ``CourseKey``. This is the question a
    Phase II reader asks, answered the way the tool answers it everywhere.
    """
    return read(cfg, parse_course_id(course) if isinstance(course, str) else course).commit


def head_committed(head, course):
    """Tell from a HEAD of a marker key whether it holds a commit the tool wrote for ``course``."""
    return (head is not None and s3.written_by_tool(head, course)
            and head.get("Metadata", {}).get(META_STATUS, COMMITTED) == COMMITTED)


def is_committed(cfg, course):
    """Tell whether the course is committed from HEADs, when the marker's document is not needed."""
    layout = Layout.of(cfg, course)
    new, old = pool.together(lambda: s3.head(cfg, layout.marker), lambda: s3.head(cfg, layout.legacy_marker))
    return head_committed(new, course) if new is not None else head_committed(old, course)


def _meta(course, run_id, status):
    return dict(s3.tool_metadata(course, run_id), **{META_STATUS: status})


def _put(cfg, course, run_id, doc, seen_etag, status):
    """Put ``doc`` at the commit key, conditional on ``seen_etag`` (None: on the key being absent); return its ETag."""
    doc = dict(doc, format=3, status=status, course_id=str(course), run_id=run_id, nonce=secrets.token_hex(8))
    tag = s3.put_json(cfg, Layout.of(cfg, course).marker, doc, metadata=_meta(course, run_id, status),
                      if_none_match=seen_etag is None, if_match=f'"{seen_etag}"' if seen_etag else None)
    return doc, tag


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
    doc = {"epoch": epoch, "fenced_at": _now(), "after": seen.etag}
    return _put(cfg, course, run_id, doc, seen.etag, FENCED)[1]


def commit(cfg, course, run_id, token, doc):
    """Replace this run's fence with its commit marker; return (marker document, its ETag).

    Raise ConcurrentRun if the fence is not this run's any more. Any other
    error leaves the commit in doubt: the request may have landed.
    """
    try:
        return _put(cfg, course, run_id, doc, token, COMMITTED)
    except s3.PreconditionFailed:
        raise ConcurrentRun(f"course {course}: another runner claimed it while run {run_id} was paused "
                            "(its lease had expired), so this run did not commit; check "
                            "`python -m etl status`, and re-run migrate if the course is not promoted") from None


def release(cfg, course, run_id, epoch, token, reason):
    """Replace this run's own fence with a release (``reason``: failed, rolled_back); return the new Seen, or None.

    From then on no request of this run, however late it arrives, can commit:
    its commit is conditional on the fence. Return None when the key no longer
    holds this run's fence (another runner's write, or this run's own commit
    that landed after all); the caller reads the key to learn which.
    """
    try:
        doc, tag = _put(cfg, course, run_id, {"epoch": epoch, "reason": reason, "released_at": _now(),
                                              "after": token}, token, RELEASED)
    except s3.PreconditionFailed:
        return None
    return Seen(doc, tag, _meta(course, run_id, RELEASED))


def reassert(cfg, course, seen):
    """Rewrite the commit ``seen`` found with a new nonce, conditional on its ETag; return the new Seen.

    A claim that was made after the commit but whose fence has not landed yet
    read the commit's old ETag: its fence now fails, so it can never cover a
    commit whose record another runner has caught up. A 0.3.0 commit is
    copied to ``_COMMIT.json`` (If-None-Match) with everything the reader
    contract promises written out: its epoch (0), ``transcripts_prefix`` and
    ``manifest_key``. Raise PreconditionFailed when the key changed since ``seen``.
    """
    doc = dict(seen.commit, reasserted_at=_now())
    doc.pop("nonce", None)
    if seen.doc is None:  # a 0.3.0 commit: written out whole, so a reader of _COMMIT.json finds where its objects are
        doc.setdefault("epoch", 0)
        doc.setdefault("transcripts_prefix", transcripts_prefix(cfg, course, doc))
        doc.setdefault("manifest_key", manifest_key(cfg, course, doc))
    run_id = doc.get("run_id", "")
    doc, tag = _put(cfg, course, run_id, doc, seen.etag if seen.doc is not None else None, COMMITTED)
    return Seen(doc, tag, _meta(course, run_id, COMMITTED))


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
