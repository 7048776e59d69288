"""Win a course and hold it: a conditional record write that takes the next epoch, a fence, a lease and its heartbeat.

A runner works a course through a ``Claim``: it wins the course with a
conditional write on the record, which also takes the course's next **epoch**
(the highest it read, plus one: two claims can never hold the same one), fences
the commit key (``etl.protocol.marker``), keeps a lease alive with a heartbeat, and moves
the course only along ``state.TRANSITIONS``. Every object a claim writes carries its
epoch in its key (``etl.model.layout``).
"""

import functools
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional

from etl.model import client, lease, logs
from etl.model.errors import AlreadyPromoted, ConcurrentRun, ForeignObject, IllegalTransition, LeaseExpired, describe
from etl.model.layout import Layout
from etl.protocol import marker
from etl.protocol.cleanup import remove_tool_objects
from etl.protocol.repair import repair_promoted
from etl.protocol.state import (
    FAILED,
    IN_PROGRESS,
    PROMOTED,
    PROMOTING,
    ROLLED_BACK,
    TAKEOVER,
    TRANSITIONS,
    archive,
    entry,
    epoch_of,
    holder,
    iso,
    lease_alive,
    now,
    read,
)
from etl.store import pool, probe, s3


class Claim:
    """A runner's hold on one course: conditional moves along the state machine, plus a lease."""

    def __init__(self, cfg, course, run_id, record, etag, epoch):
        self.cfg, self.course, self.run_id, self.epoch = cfg, course, run_id, epoch
        self.layout = Layout(cfg, course)
        self.record, self.etag = record, etag
        self.token = None  # the ETag of this run's fence at the commit key, once installed
        self.released = False  # True once this run replaced its fence with a release
        self.lost = None
        self.owned = False  # True once this runner's own conditional write has landed
        self.notes = []  # events to append to the history with the next move
        self.valid_until = None  # this runner's monotonic time after which it may not write
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat = None

    @property
    def state(self):
        return self.record.get("state") if self.record else None

    def allowed(self, state):
        """Refuse a move the state machine does not allow from where the course stands."""
        current = self.state
        allowed = TAKEOVER[current] if current in IN_PROGRESS and not self.owned else TRANSITIONS[current]
        if state not in allowed:
            raise IllegalTransition(f"course {self.course}: cannot go from {current or 'new'} to {state}; "
                                    "run `python -m etl status` to see where it stands")

    def move(self, state, *, error=None, **fields):
        """Move the course to ``state`` with a conditional write that also appends the event to its history."""
        with self._lock:
            if self.lost:
                raise self.lost
            current = self.state
            self.allowed(state)
            at = now()
            record = dict(self.record or {"course_id": str(self.course), "created_at": iso(at)})
            record.update(fields)
            me = lease.identity()
            if state == ROLLED_BACK:  # nothing of the course is in S3 any more: its counts went with it
                for stale in ("transcripts", "bytes", "parse_problems", "manifest_key", "marker_key",
                              "source_fingerprint", "staged_epoch"):
                    record.pop(stale, None)
            record.update(state=state, run_id=self.run_id, epoch=self.epoch, updated_at=iso(at), host=me["host"],
                          pid=me["pid"], holder=me, error=error)
            if state in IN_PROGRESS:
                record["lease_seconds"] = self.cfg.lease_seconds
                record["lease_expires_at"] = iso(at + timedelta(seconds=self.cfg.lease_seconds))  # for people
            else:
                record.pop("lease_expires_at", None)
                record.pop("lease_seconds", None)
            record["history"] = (list(record.get("history") or []) + self.notes
                                 + [entry(state, self.run_id, iso(at), previous=current, error=error,
                                          epoch=self.epoch, **fields)])
            record = archive(self.cfg, self.course, self.run_id, record)
            self._write(record)
            self.notes = []
        # A step of one course: DEBUG, so a batch logs one INFO line per course (its outcome). Promoting
        # carries the staged run's fields into the record; the log has them from ``staged`` already.
        logs.event("warning" if state == FAILED else "debug", self.course, state, self.run_id, error=error,
                   epoch=self.epoch, **({} if state == PROMOTING else fields))
        if state in IN_PROGRESS:
            self._start_heartbeat()
        else:
            self.release()

    def note(self, event, **fields):
        """Log an event now and append it to the course's history with the next move."""
        self.notes.append(entry(event, self.run_id, **fields))
        logs.event("debug", self.course, event, self.run_id, **fields)

    def _write(self, record, client=None):
        meta = s3.tool_metadata(self.course, self.run_id)
        record = {k: v for k, v in record.items() if not k.startswith("_")}
        record["version"] = int(record.get("version") or 0) + 1
        started = self.cfg.clock.monotonic()
        try:
            self.etag = s3.put_json(self.cfg, self.layout.record, record, metadata=meta, client=client,
                                    if_none_match=self.etag is None, if_match=f'"{self.etag}"' if self.etag else None)
        except s3.PreconditionFailed:
            latest, _ = read(self.cfg, self.course)
            who = holder(latest) if latest else "another runner"
            self.lost = ConcurrentRun(f"course {self.course}: another runner changed its status first "
                                      f"({who}); this run {self.run_id} stops; check `python -m etl status`")
            raise self.lost from None
        self.record, self.owned = record, True
        self.valid_until = started + self.cfg.lease_seconds - self.cfg.lease_margin()

    def check(self):
        """Raise if the heartbeat found the claim taken over, or if this runner can no longer be sure of its lease."""
        if self.lost:
            raise self.lost
        if self.valid_until is not None and self.state in IN_PROGRESS and self.cfg.clock.monotonic() > self.valid_until:
            raise LeaseExpired(f"course {self.course}: run {self.run_id} could not renew its lease in time, so it "
                               "stopped before its next write; another runner may take the course over; "
                               "check `python -m etl status`, then re-run")

    def earlier(self, epoch):
        """Tell whether an object's epoch is one this claim may delete: any below its own.

        Safe once the claim's fence stands: no earlier claim can commit any more,
        a commit this claim replaced was a forced rollback's to remove, and any
        later claim's objects carry a higher epoch, out of reach.
        """
        return epoch is not None and epoch < self.epoch and self.token is not None

    def guarded(self):
        """Return a block in which every write this runner sends first checks that its claim still stands."""
        return client.guarded(self.check)

    def _start_heartbeat(self):
        if self._beat is None:
            self._stop.clear()
            self._beat = threading.Thread(target=self._heartbeat, name=f"lease-{self.run_id}", daemon=True)
            self._beat.start()

    def _heartbeat(self):
        period = max(1.0, self.cfg.lease_seconds / 3)
        while not self._stop.wait(period):
            with self._lock:
                if self.lost or self.state not in IN_PROGRESS:
                    return
                record = dict(self.record, lease_expires_at=iso(now() + timedelta(seconds=self.cfg.lease_seconds)))
                try:
                    self._write(record, client=self.cfg.lease_s3)
                except Exception as exc:  # the main thread sees self.lost, or retries next beat
                    logs.event("warning", self.course, "heartbeat_failed", self.run_id, error=describe(exc))

    def release(self):
        """Stop the heartbeat."""
        self._stop.set()
        beat, self._beat = self._beat, None
        if beat is not None and beat is not threading.current_thread():
            beat.join()


@dataclass(frozen=True)
class Look:
    """A course's record and commit key, read together before a claim."""

    record: Optional[dict]
    etag: Optional[str]
    seen: Any  # marker.Seen

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
    return Look(record, etag, seen)


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
        removed = remove_tool_objects(cfg, course, Layout(cfg, course).staging_root,
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
    result = Claim(cfg, course, run_id, looked.record, looked.etag, looked.epoch + 1)
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
        result.token = _fence(result, looked.seen, uncommit and looked.seen.committed)
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
            claim.release()
            claim.lost = ConcurrentRun(f"course {course}: its commit marker changed while run {run_id} started; "
                                       "nothing was deleted; check `python -m etl status`, then re-run")
            repair_promoted(cfg, course, seen, held=(claim.record, claim.etag))
            if not uncommit:
                refuse_promoted(cfg, course, seen)
            raise claim.lost
        if seen.foreign or (seen.epoch is not None and seen.epoch >= claim.epoch):
            claim.release()
            claim.lost = ConcurrentRun(f"course {course}: another runner fenced it after run {run_id} looked "
                                       f"(the commit key holds {seen.holds} of epoch {seen.epoch}); this run stops "
                                       "and changes nothing; check `python -m etl status`")
            raise claim.lost
        claim.note("fence_replaced", epoch_replaced=seen.epoch, holds=seen.holds)
        uncommit = False
    claim.release()
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


def record_failure(claim, exc):
    """Move a claimed course to failed for ``exc`` and release the run's fence; never mask ``exc``.

    Called once the run's own writes are undone, so S3 is as it was before the run.
    """
    if claim.lost:
        return
    try:
        with client.unguarded():  # conditional on this claim's own record and fence: safe whatever the lease
            claim.move(FAILED, error=describe(exc))
            if claim.token and not claim.released:
                marker.release(claim.cfg, claim.course, claim.run_id, claim.epoch, claim.token, "failed")
    except ConcurrentRun:  # another runner has the course now: its record is not this run's to write
        claim.release()
    except Exception as err:  # S3 may be the thing that failed; the original error matters more
        logs.event("error", claim.course, "status_write_failed", claim.run_id, error=describe(err))
        claim.release()
