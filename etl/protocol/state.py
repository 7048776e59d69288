"""The migration status table: one record per course, its event log, and the course state machine.

The table lives in S3 under ``state_prefix`` so every runner sees the same one:
``{state}/courses/{course}.json`` is the course's current record, changed only
by conditional writes (If-Match on its ETag, If-None-Match for the first one).
The record carries its own event log (``history``): each transition appends its
entry in the same conditional write that makes it, so a state and its log line
can never disagree. When the log outgrows ``HISTORY_LIMIT`` its oldest entries
move to ``{state}/events/{course}/``, one object per archive, never rewritten.

A runner works a course through a ``Claim``: it wins the course with a
conditional write on the record, which also takes the course's next **epoch**
(the highest it read, plus one: two claims can never hold the same one), fences
the commit key (``etl.protocol.marker``), keeps a lease alive with a heartbeat, and moves
the course only along ``TRANSITIONS``. Every object a claim writes carries its
epoch in its key (``etl.model.layout``). The commit marker, not this table, decides
"promoted": readers reconcile the two with ``effective_state``.
"""

import functools
import json
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import pandas as pd

from etl.model import client, lease, logs, redact
from etl.protocol import marker
from etl.store import pool, probe, s3
from etl.protocol.cleanup import remove_tool_objects
from etl.model.errors import AlreadyPromoted, ConcurrentRun, IllegalTransition, LeaseExpired
from etl.model.layout import Layout, parse_course_id

EXTRACTING, STAGED, PROMOTING, PROMOTED = "extracting", "staged", "promoting", "promoted"
FAILED, ROLLING_BACK, ROLLED_BACK = "failed", "rolling_back", "rolled_back"
IN_PROGRESS = {EXTRACTING, PROMOTING, ROLLING_BACK}
TRANSITIONS = {
    None: {EXTRACTING, ROLLING_BACK},
    EXTRACTING: {STAGED, PROMOTING, FAILED},  # straight to promoting: the runner that staged it promotes it
    STAGED: {EXTRACTING, PROMOTING, ROLLING_BACK},
    PROMOTING: {PROMOTED, FAILED},
    PROMOTED: {ROLLING_BACK},
    FAILED: {EXTRACTING, ROLLING_BACK},
    ROLLING_BACK: {ROLLED_BACK, FAILED},
    ROLLED_BACK: {EXTRACTING, ROLLING_BACK},
}
# A runner that finds a course in progress under an expired lease takes it over:
# it rolls the leftovers back, or finishes a promote of the same run.
TAKEOVER = {EXTRACTING: {EXTRACTING, ROLLING_BACK}, PROMOTING: {PROMOTING, EXTRACTING, ROLLING_BACK},
            ROLLING_BACK: {ROLLING_BACK, EXTRACTING}}
COLUMNS = ["course_id", "state", "run_id", "transcripts", "bytes", "updated_at", "error", "host", "pid"]
HISTORY_COLUMNS = ["at", "event", "previous", "run_id", "host", "pid", "error", "details"]
HISTORY_LIMIT, HISTORY_KEPT = 200, 100  # entries in a record; beyond the limit all but the last kept are archived


def now():
    return datetime.now(timezone.utc)


def iso(moment):
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read(cfg, course):
    """Return (record, etag) for a course, or (None, None) when it has none.

    The record's ``_age`` is how long ago it was written, by S3's clock; keys
    starting with ``_`` are never written back.
    """
    return _read_record(cfg, Layout(cfg, course).record)


def _read_record(cfg, key):
    data, tag, _, age = s3.fetch_aged(cfg, key)
    if data is None:
        return None, None
    return dict(json.loads(data), _age=age), tag


def lease_alive(record, clock=None):
    """Tell whether a record is in progress under an unexpired lease held by a live runner.

    The lease is judged by S3's clock: the record's age (``read``) against the
    holder's ``lease_seconds``. A holder on this machine and pid namespace whose
    process is gone (killed, crashed) holds nothing, so a re-run there takes its
    courses over at once; any other holder keeps the course until its lease expires.
    """
    if not record or record.get("state") not in IN_PROGRESS:
        return False
    if lease.holder_gone(record.get("holder")):
        return False
    clock = clock or lease.LeaseClock()
    if record.get("_age") is None or record.get("lease_seconds") is None:  # a 0.3.0 record, or no Date header
        return not lease.expired_at_wall(record["lease_expires_at"], now() + timedelta(seconds=clock.age(0)))
    return clock.age(record["_age"]) < record["lease_seconds"]


def epoch_of(record):
    """Return a record's epoch: 0 for a record of 0.3.0 or none."""
    return int((record or {}).get("epoch") or 0)


def holder(record):
    """Describe who holds a record, for refusal messages."""
    return (f"run {record.get('run_id')} on {record.get('host')} pid {record.get('pid')} "
            f"({record.get('state')} until {record.get('lease_expires_at')})")


class Claim:
    """A runner's hold on one course: conditional moves along the state machine, plus a lease."""

    def __init__(self, cfg, course, run_id, record, etag, epoch):
        self.cfg, self.course, self.run_id, self.epoch = cfg, course, run_id, epoch
        self.layout = Layout(cfg, course)
        self.record, self.etag = record, etag
        self.token = None  # the ETag of this run's fence at the commit key, once installed
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
            if len(record["history"]) > HISTORY_LIMIT:
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
    """Read the course's status record and its marker key at once."""
    (record, etag), seen = pool.together(lambda: read(cfg, course), lambda: marker.read(cfg, course))
    return Look(record, etag, seen)


def refuse_promoted(cfg, course, doc):
    """Raise AlreadyPromoted for a committed course, first catching its record and staging up.

    A run stopped between its marker and its last steps leaves the record behind
    and its staging run in place; the marker is the truth, so both catch up here.
    Only staging of the committed epoch and below goes: a staging run is never
    read once a commit stands, and any later epoch belongs to a later claim.
    """
    run_id, committed_epoch = doc.get("run_id"), int(doc.get("epoch", 0))
    lagged = repair_promoted(cfg, course, doc)
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
        refuse_promoted(cfg, course, looked.seen.commit)
    if lease_alive(looked.record, cfg.clock):
        raise ConcurrentRun(f"course {course}: held by {holder(looked.record)}; wait for it, "
                            f"or after that runner is gone and its lease expires, re-run")
    result = Claim(cfg, course, run_id, looked.record, looked.etag, looked.epoch + 1)
    try:
        result.allowed(target)
    except IllegalTransition:
        if looked.state == PROMOTED:
            committed = marker.committed(cfg, course)
            if committed:  # promoted since we looked
                refuse_promoted(cfg, course, committed)
        raise
    result.move(target)
    try:
        result.token = marker.fence(cfg, course, run_id, result.epoch, looked.seen,
                                    uncommit=uncommit and looked.seen.committed)
    except s3.PreconditionFailed:
        result.release()
        now_seen = marker.read(cfg, course)
        if now_seen.committed:  # committed after we looked: hand our record back to the commit
            repair_promoted(cfg, course, now_seen.commit, held=(result.record, result.etag))
            if not uncommit:
                refuse_promoted(cfg, course, now_seen.commit)
            raise ConcurrentRun(f"course {course}: its commit marker changed while run {run_id} started the "
                                "rollback; nothing was deleted; check `python -m etl status`, then re-run") from None
        err = ConcurrentRun(f"course {course}: another runner fenced it after run {run_id} looked; "
                            "this run stops and changes nothing; check `python -m etl status`")
        record_failure(result, err)
        raise err from None
    except BaseException as exc:
        record_failure(result, exc)
        raise
    return result


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


def effective_state(record, committed, clock=None):
    """Return the course's state with the marker as the source of truth for "committed"."""
    if committed:
        return PROMOTED
    state = record.get("state") if record else None
    if state == PROMOTED:  # the record says committed but the marker is gone: trust the marker
        return "marker_missing"
    if state in IN_PROGRESS and not lease_alive(record, clock):
        return f"{state}_stale"
    return state


def repair_promoted(cfg, course, doc, held=None):
    """Catch the status table up with a present marker; return True if the record lagged.

    A run killed after its marker may have left the record behind: it is moved
    to promoted, with a ``promoted`` entry marked ``repaired`` in its history.
    ``held`` is (record, etag) when the caller's own claim holds the record.
    """
    run_id = doc.get("run_id", "")
    record, etag = held or read(cfg, course)
    if held is None and lease_alive(record, cfg.clock):  # a runner at work on it (a forced rollback) owns it
        return False
    if record and record.get("state") == PROMOTED and record.get("run_id") == run_id:
        return False
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


def entry(event, run_id, at=None, **fields):
    """Return one history entry: the event, when (now unless ``at``), which run on which host and pid, its fields."""
    return {"at": at or iso(now()), "event": event, "run_id": run_id, "host": socket.gethostname(),
            "pid": os.getpid(), **{k: v for k, v in fields.items() if v is not None}}


def archive(cfg, course, run_id, record):
    """Move all but the last ``HISTORY_KEPT`` history entries to an events object; return the record to write.

    The archive's key names the record version it is cut from, and the record
    lists its archives (``archives``): an archive whose record write then loses
    its race is never listed, so ``history`` never shows its entries twice.
    """
    entries = record["history"]
    old, kept = entries[:-HISTORY_KEPT], entries[-HISTORY_KEPT:]
    stamp = lambda e: e["at"].replace(":", "").replace("-", "")  # noqa: E731
    version = int(record.get("version") or 0) + 1
    key = f"{Layout(cfg, course).events}v{version:010d}-{stamp(old[0])}-{stamp(old[-1])}.json"
    try:
        s3.put_json(cfg, key, {"course_id": str(course), "history": old}, if_none_match=True,
                    metadata=s3.tool_metadata(course, run_id))
    except s3.PreconditionFailed:
        pass  # an earlier attempt of this very archive landed
    return dict(record, history=kept, archives=list(record.get("archives") or []) + [key])


def history(cfg, course_id):
    """Show a course's event log, oldest first: every transition and note, with time, run, host and pid.

    The log is the record's ``history`` with the archives it lists; the archives
    of 0.3.0 and the one-object-per-event log of 0.2.0 and before, under the
    same prefix, are read too. An archive the record does not list lost its
    record write, and its entries are in the record or a listed archive.

    Args:
        course_id: course id, course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN.
    """
    course = parse_course_id(course_id)
    layout = Layout(cfg, course)
    (record, _), present = pool.together(
        lambda: read(cfg, course),
        lambda: [o["Key"] for o in s3.list_objects(cfg, layout.events) if o["Key"].endswith(".json")])
    listed = set((record or {}).get("archives") or [])
    archived = [k for k in present if k in listed or not k[len(layout.events):].startswith("v")]
    old = pool.run_all(cfg, lambda key: s3.get_json(cfg, key), archived)
    # An archive holds a list of entries; an event object of 0.2.0 and before is one entry itself.
    entries = [e for doc, _ in old if doc for e in doc.get("history", [doc] if "event" in doc else [])]
    entries += (record or {}).get("history") or []
    known = set(HISTORY_COLUMNS) - {"details"}
    rows = [{**{c: e.get(c) for c in known},
             "details": json.dumps({k: v for k, v in e.items() if k not in known}, sort_keys=True)
             if set(e) - known else None} for e in sorted(entries, key=lambda e: e["at"])]
    df = pd.DataFrame(rows, columns=HISTORY_COLUMNS, dtype=object)
    df = df.where(df.notna(), None)
    df["pid"] = pd.to_numeric(df["pid"]).astype("Int64")
    return df


def status(cfg, course_id=None):
    """Show the migration status table, one row per course.

    The commit marker decides "promoted": a course whose record lags its marker
    reads as promoted, and one whose lease expired mid-run reads as ``*_stale``.

    Args:
        course_id: only this course.
    """
    from urllib.parse import unquote

    if course_id is not None:
        keys = [Layout(cfg, parse_course_id(course_id)).record]
        if s3.head(cfg, keys[0]) is None:
            from etl.protocol.known import refuse_unknown

            refuse_unknown(cfg, [course_id])  # known but never migrated: an empty table says so
    else:
        prefix = f"{cfg.state_prefix}/courses/"
        keys = [o["Key"] for o in s3.list_objects(cfg, prefix) if o["Key"].endswith(".json")]

    def row(key):
        record, _ = _read_record(cfg, key)
        if record is None:
            return None
        course_key = parse_course_id(record.get("course_id") or unquote(key.rsplit("/", 1)[1][:-5]))
        committed = marker.is_committed(cfg, course_key)
        return {**{c: record.get(c) for c in COLUMNS}, "state": effective_state(record, committed, cfg.clock)}

    rows = [r for r in pool.run_all(cfg, row, keys) if r]
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values("course_id", ignore_index=True)
    for column in ("transcripts", "bytes", "pid"):
        df[column] = pd.to_numeric(df[column]).astype("Int64")
    return df


def describe(exc):
    """Return a one-line reason for an exception, fit for the record and the log."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = redact.scrub(" ".join(str(exc).split()))
    return text if text.startswith("course ") else f"{type(exc).__name__}: {text}"


def record_failure(claim, exc):
    """Move a claimed course to failed for ``exc`` and remove the run's fence; never mask ``exc``.

    Called once the run's own writes are undone, so S3 is as it was before the run.
    """
    if claim.lost:
        return
    try:
        with client.unguarded():  # conditional on this claim's own record and fence: safe whatever the lease
            claim.move(FAILED, error=describe(exc))
            if claim.token:
                marker.unfence(claim.cfg, claim.course, claim.token)
    except ConcurrentRun:  # another runner has the course now: its record is not this run's to write
        claim.release()
    except Exception as err:  # S3 may be the thing that failed; the original error matters more
        logs.event("error", claim.course, "status_write_failed", claim.run_id, error=describe(err))
        claim.release()
