"""A runner's hold on one course: one status with legal moves, the record's conditional writes, and a lease.

``etl.protocol.claims`` wins a course and makes a ``Claim``; every later write
of the record (a move along the state machine, a heartbeat, a catch-up with a
commit) goes through it, conditional on the version it holds, with a lost
answer settled by reading the record back (its write nonce).
"""

import secrets
import threading
from datetime import timedelta

from etl.model import client, lease, logs
from etl.model.errors import ConcurrentRun, EtlError, IllegalTransition, LeaseExpired, describe
from etl.model.layout import Layout
from etl.protocol.state import (
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
    now,
    read,
)
from etl.store import s3


class Claim:
    r"""A runner's hold on one course: one status with legal moves, conditional record writes, and a lease.

    The status is one field, moved only by the named moves below; an illegal
    move raises, as s3transfer's ``TransferCoordinator`` does::

        new --hold--> held --fence--> fenced --commit--> committed
                                         \--release--> released
        new, held, fenced, released --lose--> lost

    ``hold`` is its first record write landing, ``fence`` its fence standing at
    the commit key (its ETag is the ``token``), ``commit`` and ``release`` what
    replaced the fence, ``lose`` another runner's write winning.
    """

    NEW, HELD, FENCED, COMMITTED, RELEASED, LOST = "new", "held", "fenced", "committed", "released", "lost"
    MOVES = {"hold": ({NEW}, HELD), "fence": ({HELD}, FENCED), "commit": ({FENCED}, COMMITTED),
             "release": ({FENCED}, RELEASED), "lose": ({NEW, HELD, FENCED, RELEASED}, LOST)}

    def __init__(self, cfg, course, run_id, record, etag, epoch, layout=None):
        self.cfg, self.course, self.run_id, self.epoch = cfg, course, run_id, epoch
        self.layout = layout or Layout.of(cfg, course)
        self.record, self.etag = record, etag
        self.status = self.NEW
        self.token = None  # the ETag of this run's fence at the commit key, once it stands
        self.lost = None  # the ConcurrentRun to raise, once lost
        self.notes = []  # events to append to the history with the next move
        self.valid_until = None  # this runner's monotonic time after which it may not write
        self._unsettled = set()  # nonces of this runner's record writes whose answers it never heard
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat = None

    def _to(self, move):
        sources, target = self.MOVES[move]
        if self.status not in sources:
            raise EtlError(f"course {self.course}: run {self.run_id} cannot {move} its claim while it is "
                           f"{self.status} (a bug: re-run with --debug and report the traceback)")
        self.status = target

    def fenced(self, token):
        """Record that this run's fence stands at the commit key, with ETag ``token``."""
        self._to("fence")
        self.token = token

    def committed(self):
        """Record that this run's commit replaced its fence."""
        self._to("commit")

    def fence_released(self):
        """Record that a release replaced this run's fence: no request of this run can commit any more."""
        self._to("release")

    def lose(self, lost):
        """Record that another runner has the course now; stop the heartbeat; ``lost`` is what to raise."""
        if self.status != self.LOST:
            self._to("lose")
            self.lost = lost
        self.stop()
        return self.lost

    @property
    def owned(self):
        return self.status != self.NEW

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
            previous = self.state
            self.allowed(state)
            me = lease.identity()

            def build(current):
                if current is not self.record and (current or {}).get("state") == state and \
                        current.get("run_id") == self.run_id and current.get("epoch") == self.epoch:
                    return None  # this very move landed, its answer lost: nothing more to write
                at = now()
                record = dict(current or {"course_id": str(self.course), "created_at": iso(at)})
                record.update(fields)
                if state == ROLLED_BACK:  # nothing of the course is in S3 any more: its counts went with it
                    for stale in ("transcripts", "bytes", "parse_problems", "manifest_key", "marker_key",
                                  "source_fingerprint", "staged_epoch"):
                        record.pop(stale, None)
                record.update(state=state, run_id=self.run_id, epoch=self.epoch, updated_at=iso(at),
                              host=me["host"], pid=me["pid"], holder=me, error=error)
                if state in IN_PROGRESS:
                    record["lease_seconds"] = self.cfg.lease_seconds
                    record["lease_expires_at"] = iso(at + timedelta(seconds=self.cfg.lease_seconds))  # for people
                else:
                    record.pop("lease_expires_at", None)
                    record.pop("lease_seconds", None)
                record["history"] = (list(record.get("history") or []) + self.notes
                                     + [entry(state, self.run_id, iso(at), previous=previous, error=error,
                                              epoch=self.epoch, **fields)])
                return archive(self.cfg, self.course, self.run_id, record)

            self._write(build)
            self.notes = []
        # A step of one course: DEBUG, so a batch logs one INFO line per course (its outcome). Promoting
        # carries the staged run's fields into the record; the log has them from ``staged`` already.
        # DEBUG, failures too: a verb's own error line says why, and a batch logs course_failed with the reason.
        logs.event("debug", self.course, state, self.run_id, error=error, epoch=self.epoch,
                   **({} if state == PROMOTING else fields))
        if state in IN_PROGRESS:
            self._start_heartbeat()
        else:
            self.stop()

    def catch_up(self, commit):
        """Move the record to promoted for the ``commit`` that stands, from wherever it is: the marker is the truth.

        For a run stopped after its commit and before its record caught up;
        the history gets a ``promoted`` entry marked ``repaired``.
        """
        run_id = commit.get("run_id", "")

        def build(current):
            if current is not self.record and (current or {}).get("state") == PROMOTED and \
                    current.get("run_id") == run_id:
                return None
            at = iso(now())
            record = dict(current or {"course_id": str(self.course), "created_at": commit.get("committed_at")})
            record.update(state=PROMOTED, run_id=run_id, transcripts=commit.get("transcripts"),
                          bytes=commit.get("bytes"), error=None, updated_at=at,
                          epoch=max(epoch_of(current), int(commit.get("epoch", 0))))
            record.pop("lease_expires_at", None)
            record.pop("lease_seconds", None)
            record["history"] = list(record.get("history") or []) + [
                entry(PROMOTED, run_id, at, previous=(current or {}).get("state"), repaired=True)]
            return record

        with self._lock:
            self._write(build)
        logs.event("debug", self.course, PROMOTED, run_id, repaired=True)

    def note(self, event, **fields):
        """Log an event now and append it to the course's history with the next move."""
        self.notes.append(entry(event, self.run_id, **fields))
        logs.event("debug", self.course, event, self.run_id, **fields)

    def _write(self, build, client=None):
        """Write ``build(record)`` conditionally on the version this runner holds; settle a lost answer by its nonce.

        A write whose answer never came may have landed: its nonce is kept, and
        when a later write meets 412, the record is read back; if it carries one
        of those nonces, it is this runner's own write, and ``build`` runs again on
        it. Anything else is another runner's, and the claim is lost.
        """
        for _ in range(2):
            record = build(self.record)
            if record is None:
                return
            record = {k: v for k, v in record.items() if not k.startswith("_")}
            record["version"] = int((self.record or {}).get("version") or 0) + 1
            nonce, started = secrets.token_hex(8), self.cfg.clock.monotonic()
            try:
                self.etag = s3.put_json(self.cfg, self.layout.record, record, client=client, nonce=nonce,
                                        metadata=s3.tool_metadata(self.course, self.run_id),
                                        if_none_match=self.etag is None,
                                        if_match=f'"{self.etag}"' if self.etag else None)
            except s3.PreconditionFailed:
                latest, tag = read(self.cfg, self.course)
                if latest is not None and latest.get("_write") in self._unsettled:
                    self._unsettled.clear()  # this runner's own lost write: carry on from it
                    self.record, self.etag = latest, tag
                    continue
                who = holder(latest) if latest else "another runner"
                raise self.lose(ConcurrentRun(f"course {self.course}: another runner changed its status first "
                                              f"({who}); this run {self.run_id} stops; check `python -m etl "
                                              "status`")) from None
            except BaseException:
                self._unsettled.add(nonce)  # it may have landed: a later 412 reads it back
                raise
            self._unsettled.clear()
            self.record = record
            if self.status == self.NEW:
                self._to("hold")
            self.valid_until = started + self.cfg.lease_seconds - self.cfg.lease_margin()
            return
        raise self.lose(ConcurrentRun(f"course {self.course}: its status record kept changing under run "
                                      f"{self.run_id}; this run stops; check `python -m etl status`"))

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
            if not self.beat():
                return

    def beat(self):
        """Renew the lease once, on the heartbeat's own client; return False once there is nothing to renew."""
        with self._lock:
            if self.lost or self.state not in IN_PROGRESS:
                return False

            def renew(current):
                if current.get("run_id") != self.run_id or current.get("state") not in IN_PROGRESS:
                    return None  # read back after a lost answer: this run's claim moved on meanwhile
                return dict(current, lease_expires_at=iso(now() + timedelta(seconds=self.cfg.lease_seconds)))

            try:
                self._write(renew, client=self.cfg.lease_s3)
            except Exception as exc:  # the main thread sees self.lost, or the next beat tries again
                logs.event("warning", self.course, "heartbeat_failed", self.run_id, error=describe(exc))
            return not self.lost

    def stop(self):
        """Stop the heartbeat."""
        self._stop.set()
        beat, self._beat = self._beat, None
        if beat is not None and beat is not threading.current_thread():
            beat.join()
