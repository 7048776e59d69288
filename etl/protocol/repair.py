"""Catch a course's record up with its commit marker, when a run stopped after committing and before recording it."""

from etl.model.errors import ConcurrentRun
from etl.protocol import marker
from etl.protocol.hold import Claim
from etl.protocol.state import PROMOTED, epoch_of, lease_alive, read
from etl.store import s3


def repair_promoted(cfg, course, seen, held=None):
    """Catch the status table up with the commit ``seen`` found (a ``marker.Seen``); return True if the record lagged.

    A run killed after its marker may have left the record behind: it is moved
    to promoted through a ``Claim`` of its own (``Claim.catch_up``), conditional
    on the version read, its lost answers settled by nonce like every record
    write. ``held`` is the caller's own claim when it holds the record (a claim
    whose fence found the commit): the record is handed back from its version.
    A record of a later epoch than the commit's is a claim made after the
    commit (a forced rollback that stopped before its fence, say): the commit
    is rewritten first (``marker.reassert``), so that claim's fence, conditional
    on the ETag it read, can never land over the commit once its record is gone.
    """
    doc = seen.commit
    run_id = doc.get("run_id", "")
    record, etag = (held.record, held.etag) if held is not None else read(cfg, course)
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
    catcher = Claim(cfg, course, run_id, record, etag, epoch_of(record), held.layout if held is not None else None)
    try:
        catcher.catch_up(doc)
    except ConcurrentRun:
        return False  # someone else caught it up, or moved it on
    return True
