"""Catch a course's record up with its commit marker, when a run stopped after committing and before recording it."""

from etl.model import logs
from etl.model.errors import ConcurrentRun
from etl.model.layout import Layout
from etl.protocol import marker
from etl.protocol.state import PROMOTED, entry, epoch_of, iso, lease_alive, now, read
from etl.store import s3


def repair_promoted(cfg, course, seen, held=None):
    """Catch the status table up with the commit ``seen`` found (a ``marker.Seen``); return True if the record lagged.

    A run killed after its marker may have left the record behind: it is moved
    to promoted, with a ``promoted`` entry marked ``repaired`` in its history.
    ``held`` is (record, etag) when the caller's own claim holds the record.
    A record of a later epoch than the commit's is a claim made after the
    commit (a forced rollback that stopped before its fence, say): the commit
    is rewritten first (``marker.reassert``), so that claim's fence, conditional
    on the ETag it read, can never land over the commit once its record is gone.
    """
    doc = seen.commit
    run_id = doc.get("run_id", "")
    record, etag = held or read(cfg, course)
    if held is None and lease_alive(record, cfg.clock):  # a runner at work on it (a forced rollback) owns it
        return False
    if record and record.get("state") == PROMOTED and record.get("run_id") == run_id:
        return False
    if held is None and epoch_of(record) > int(doc.get("epoch", 0)):
        try:
            marker.reassert(cfg, course, seen)
        except s3.PreconditionFailed:
            now_seen = marker.read(cfg, course)
            if not now_seen.committed:
                raise ConcurrentRun(f"course {course}: a forced rollback replaced its commit while this run "
                                    "caught its record up; nothing was changed; check `python -m etl status`") from None
    at = iso(now())
    fixed = {k: v for k, v in (record or {"course_id": str(course), "created_at": doc.get("committed_at")}).items()
             if not k.startswith("_")}
    fixed.update(state=PROMOTED, run_id=run_id, transcripts=doc.get("transcripts"), bytes=doc.get("bytes"),
                 error=None, updated_at=at, epoch=max(epoch_of(record), int(doc.get("epoch", 0))),
                 version=int(fixed.get("version") or 0) + 1)
    fixed.pop("lease_expires_at", None)
    fixed.pop("lease_seconds", None)
    fixed["history"] = list(fixed.get("history") or []) + [
        entry(PROMOTED, run_id, at, previous=record.get("state") if record else None, repaired=True)]
    layout, meta = Layout(cfg, course), s3.tool_metadata(course, run_id)
    try:
        s3.put_json(cfg, layout.record, fixed, metadata=meta, if_none_match=etag is None,
                    if_match=f'"{etag}"' if etag else None)
    except s3.PreconditionFailed:
        return False  # someone else caught it up, or moved it on
    logs.event("debug", course, PROMOTED, run_id, repaired=True)
    return True
