"""Win a course and hold it: a conditional record write that takes the next epoch, a fence, a lease and its heartbeat.

A runner works a course through a ``Claim``: it wins the course with a
conditional write on the record, which also takes the course's next **epoch**
(the highest it read, plus one: two claims can never hold the same one), fences
the commit key (``etl.protocol.marker``), keeps a lease alive with a heartbeat, and moves
the course only along ``state.TRANSITIONS``. Every object a claim writes carries its
epoch in its key (``etl.model.layout``).
"""

import functools
from dataclasses import dataclass
from typing import Any, Optional

from etl.model import client, logs
from etl.model.errors import (AlreadyPromoted, ConcurrentRun, ForeignObject, IllegalTransition, describe)
from etl.model.layout import Layout
from etl.protocol import marker
from etl.protocol.cleanup import remove_tool_objects
from etl.protocol.hold import Claim
from etl.protocol.repair import repair_promoted
from etl.protocol.state import (
    FAILED,
    PROMOTED,
    epoch_of,
    holder,
    lease_alive,
    read,
)
from etl.store import pool, probe, s3


@dataclass(frozen=True)
class Look:
    """A course's record and commit key, read together before a claim."""

    record: Optional[dict]
    etag: Optional[str]
    seen: Any  # marker.Seen
    layout: Any = None  # the course's Layout, built once for the whole journey

    @property
    def state(self):
        return self.record.get("state") if self.record else None

    @property
    def epoch(self):
        """Return the highest epoch the record or the commit key names: the next claim takes one more."""
        return max(epoch_of(self.record), self.seen.epoch or 0)


def look(cfg, course):
    """Read the course's status record and its marker key at once; refuse an object the tool did not write there."""
    (record, etag), seen = pool.together(lambda: read(cfg, course), lambda: marker.read(cfg, course))
    if seen.foreign:
        raise ForeignObject(f"course {course}: its commit key holds an object the tool did not write, "
                            f"{seen.foreign}; nothing was changed; move that object away (the tool never deletes "
                            "it), then re-run")
    return Look(record, etag, seen, Layout.of(cfg, course))


def refuse_promoted(cfg, course, seen):
    """Raise AlreadyPromoted for the course committed as ``seen``, first catching its record and staging up.

    A run stopped between its marker and its last steps leaves the record behind
    and its staging run in place; the marker is the truth, so both catch up here.
    Only staging of the committed epoch and below goes: a staging run is never
    read once a commit stands, and any later epoch belongs to a later claim.
    """
    doc = seen.commit
    run_id, committed_epoch = doc.get("run_id"), int(doc.get("epoch", 0))
    lagged = repair_promoted(cfg, course, seen)
    removed = []
    if committed_epoch:
        removed = remove_tool_objects(cfg, course, Layout.of(cfg, course).staging_root,
                                      epochs=lambda e: e <= committed_epoch)[0]
    if lagged or removed:
        logs.event("debug", course, "caught_up", run_id, record_repaired=lagged, staging_removed=len(removed))
    raise AlreadyPromoted(f"course {course} is already promoted (run {run_id}, {doc.get('committed_at')}); "
                          "live data is never overwritten. Roll it back with --force first to migrate it again")


def claim(cfg, course, run_id, target, looked=None, uncommit=False):
    """Win a course for ``run_id``: move it to ``target``, then fence its marker key; return the Claim.

    ``looked`` is what the caller read before (``look``); the fence is
    conditional on it, so a runner that paused after its look and lost the course
    meanwhile can never fence it, delete anything or commit. Refuse a committed
    course (unless ``uncommit``, for a forced rollback) and one that a runner
    holds under a live lease; an expired lease is taken over.
    """
    probe.probe(cfg)  # once per process and store: a store that cannot hold the protocol is refused here
    looked = looked or look(cfg, course)
    if looked.seen.committed and not uncommit:
        refuse_promoted(cfg, course, looked.seen)
    if lease_alive(looked.record, cfg.clock):
        raise ConcurrentRun(f"course {course}: held by {holder(looked.record)}; wait for it, "
                            f"or after that runner is gone and its lease expires, re-run")
    result = Claim(cfg, course, run_id, looked.record, looked.etag, looked.epoch + 1, looked.layout)
    try:
        result.allowed(target)
    except IllegalTransition:
        if looked.state == PROMOTED:
            now_seen = marker.read(cfg, course)
            if now_seen.committed:  # promoted since we looked
                refuse_promoted(cfg, course, now_seen)
        raise
    if looked.state == PROMOTED and not looked.seen.committed:
        result.note("marker_missing", holds=looked.seen.holds)
    result.move(target)
    try:
        result.fenced(_fence(result, looked.seen, uncommit and looked.seen.committed))
    except BaseException as exc:
        record_failure(result, exc)
        raise
    return result


def _fence(claim, seen, uncommit):
    """Install the claim's fence over what it read; return the fence's ETag (the claim's token).

    The claim's record write has landed, so it holds the course. A fence of an
    earlier epoch that landed since the look is a claim this one took over:
    replaced, so that claim can never commit. A commit that landed since the
    look gives the record back to it. A fence or commit of a later epoch is a
    later claim's: this one lost.
    """
    cfg, course, run_id = claim.cfg, claim.course, claim.run_id
    for _ in range(8):
        try:
            return marker.fence(cfg, course, run_id, claim.epoch, seen, uncommit=uncommit)
        except s3.PreconditionFailed:
            pass
        seen = marker.read(cfg, course)
        if seen.committed:  # committed after we looked: hand our record back to the commit
            lost = claim.lose(ConcurrentRun(f"course {course}: its commit marker changed while run {run_id} "
                                            "started; nothing was deleted; check `python -m etl status`, then re-run"))
            repair_promoted(cfg, course, seen, held=claim)
            if not uncommit:
                refuse_promoted(cfg, course, seen)
            raise lost
        if seen.foreign or (seen.epoch is not None and seen.epoch >= claim.epoch):
            raise claim.lose(ConcurrentRun(f"course {course}: another runner fenced it after run {run_id} looked "
                                           f"(the commit key holds {seen.holds} of epoch {seen.epoch}); this run "
                                           "stops and changes nothing; check `python -m etl status`"))
        claim.note("fence_replaced", epoch_replaced=seen.epoch, holds=seen.holds)
        uncommit = False
    claim.stop()
    raise ConcurrentRun(f"course {course}: its commit key kept changing while run {run_id} fenced it; "
                        "nothing was deleted; check `python -m etl status`, then re-run")


def reraise(claim, exc):
    """Raise the error to show for a failed run: that it lost the course, when it did, else ``exc`` itself.

    A runner that froze and lost its claim meets the next runner's work as
    missing or changed objects; the truth to report is that the course is not
    its own any more, not the symptom.
    """
    if claim.lost is not None and not isinstance(exc, ConcurrentRun):
        raise claim.lost from exc
    raise exc


def verb(fn):
    """Turn a lost conditional write that escaped a verb into a one-line ConcurrentRun."""
    @functools.wraps(fn)
    def run(cfg, course_id, *args, **kwargs):
        try:
            return fn(cfg, course_id, *args, **kwargs)
        except s3.PreconditionFailed as exc:
            raise ConcurrentRun(f"course {course_id}: {exc} changed while this run was using it, so another "
                                "runner is at work on the course; nothing more was changed; check "
                                "`python -m etl status`, then re-run") from None
    return run


def release_fence(claim, reason):
    """Replace the claim's own fence with a release (``reason``); return the new Seen, or None when the key moved on."""
    seen = marker.release(claim.cfg, claim.course, claim.run_id, claim.epoch, claim.token, reason)
    if seen is not None:
        claim.fence_released()
    return seen


def record_failure(claim, exc):
    """Move a claimed course to failed for ``exc`` and release the run's fence; return True if it still held it.

    Called once the run's own writes are undone, so S3 is as it was before the
    run. Never masks ``exc``: a loss or an S3 failure here is logged, not raised.
    """
    if claim.lost:
        return False
    try:
        with client.unguarded():  # conditional on this claim's own record and fence: safe whatever the lease
            claim.move(FAILED, error=describe(exc))
            if claim.status == claim.FENCED:
                release_fence(claim, "failed")
        return True
    except ConcurrentRun:  # another runner has the course now: its record is not this run's to write
        claim.stop()
    except Exception as err:  # S3 may be the thing that failed; the original error matters more
        logs.event("error", claim.course, "status_write_failed", claim.run_id, error=describe(err))
        claim.stop()
    return False
