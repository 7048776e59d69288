"""The migration status table: one record per course, an event log, and the course state machine.

Both live in S3 under ``state_prefix`` so every runner sees the same table:
``{state}/courses/{course}.json`` is the course's current record, changed only
by conditional writes (If-Match on its ETag, If-None-Match for the first one),
and ``{state}/events/{course}/`` holds one object per transition, never rewritten.

A runner works a course through a ``Claim``: it wins the course with a
conditional write, keeps a lease alive with a heartbeat, and moves it only along
``TRANSITIONS``. The commit marker, not this table, decides "promoted": readers
reconcile the two with ``effective_state``.
"""

import os
import socket
import threading
from datetime import datetime, timedelta, timezone

import pandas as pd

from . import logs, s3
from .errors import ConcurrentRun, IllegalTransition
from .layout import Layout

EXTRACTING, STAGED, PROMOTING, PROMOTED = "extracting", "staged", "promoting", "promoted"
FAILED, ROLLING_BACK, ROLLED_BACK = "failed", "rolling_back", "rolled_back"
IN_PROGRESS = {EXTRACTING, PROMOTING, ROLLING_BACK}
TRANSITIONS = {
    None: {EXTRACTING, ROLLING_BACK},
    EXTRACTING: {STAGED, FAILED},
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


def now():
    return datetime.now(timezone.utc)


def iso(moment):
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read(cfg, course):
    """Return (record, etag) for a course, or (None, None) when it has none."""
    return s3.get_json(cfg, Layout(cfg, course).record)


def lease_alive(record, at=None):
    """Tell whether a record is in progress under an unexpired lease held by a live runner.

    A holder on this host whose process is gone (killed, crashed) holds nothing,
    so a re-run on the same machine takes its courses over at once; a holder on
    another host keeps the course until its lease expires.
    """
    if not record or record.get("state") not in IN_PROGRESS:
        return False
    return _parse(record["lease_expires_at"]) > (at or now()) and not _holder_gone(record)


def _holder_gone(record):
    if record.get("host") != socket.gethostname() or record.get("pid") in (None, os.getpid()):
        return False
    try:
        os.kill(int(record["pid"]), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):
        return False
    return False


def holder(record):
    """Describe who holds a record, for refusal messages."""
    return (f"run {record.get('run_id')} on {record.get('host')} pid {record.get('pid')} "
            f"({record.get('state')} until {record.get('lease_expires_at')})")


class Claim:
    """A runner's hold on one course: conditional moves along the state machine, plus a lease."""

    def __init__(self, cfg, course, run_id, record, etag):
        self.cfg, self.course, self.run_id = cfg, course, run_id
        self.layout = Layout(cfg, course)
        self.record, self.etag = record, etag
        self.lost = None
        self.owned = False  # True once this runner's own conditional write has landed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat = None

    @property
    def state(self):
        return self.record.get("state") if self.record else None

    def move(self, state, *, error=None, **fields):
        """Move the course to ``state`` with a conditional write, then log the event."""
        with self._lock:
            if self.lost:
                raise self.lost
            current = self.state
            allowed = TRANSITIONS[current]
            if current in IN_PROGRESS and not self.owned:
                allowed = TAKEOVER[current]
            if state not in allowed:
                raise IllegalTransition(f"course {self.course}: cannot go from {current or 'new'} to {state}; "
                                        "run `python -m etl status` to see where it stands")
            at = now()
            record = dict(self.record or {"course_id": str(self.course), "created_at": iso(at)})
            record.update(fields)
            record.update(state=state, run_id=self.run_id, updated_at=iso(at), host=socket.gethostname(),
                          pid=os.getpid(), error=error)
            if state in IN_PROGRESS:
                record["lease_expires_at"] = iso(at + timedelta(seconds=self.cfg.lease_seconds))
            else:
                record.pop("lease_expires_at", None)
            self._write(record)
        try:
            self.event(state, error=error, previous=current, **fields)
        except Exception as err:  # the record moved, and it is the truth; a lost log line must not undo that
            logs.event("error", self.course, "event_log_failed", self.run_id, state=state, error=describe(err))
        if state in IN_PROGRESS:
            self._start_heartbeat()
        else:
            self.release()

    def _write(self, record):
        meta = s3.tool_metadata(self.course, self.run_id)
        try:
            self.etag = s3.put_json(self.cfg, self.layout.record, record, metadata=meta,
                                    if_none_match=self.etag is None, if_match=f'"{self.etag}"' if self.etag else None)
        except s3.PreconditionFailed:
            latest, _ = read(self.cfg, self.course)
            who = holder(latest) if latest else "another runner"
            self.lost = ConcurrentRun(f"course {self.course}: another runner changed its status first "
                                      f"({who}); this run {self.run_id} stops; check `python -m etl status`")
            raise self.lost from None
        self.record, self.owned = record, True

    def event(self, event, **fields):
        """Append one event to the course's log (never overwritten)."""
        at = now()
        doc = {"course_id": str(self.course), "run_id": self.run_id, "event": event, "at": iso(at),
               "host": socket.gethostname(), "pid": os.getpid(), **fields}
        key = f"{self.layout.events}{at.strftime('%Y%m%dT%H%M%S.%fZ')}-{self.run_id}-{event}.json"
        s3.put_json(self.cfg, key, doc, metadata=s3.tool_metadata(self.course, self.run_id), if_none_match=True)
        logs.event("info", self.course, event, self.run_id, **{k: v for k, v in fields.items() if k != "previous"})

    def check(self):
        """Raise if the heartbeat found the claim taken over."""
        if self.lost:
            raise self.lost

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
                    self._write(record)
                except Exception as exc:  # the main thread sees self.lost, or retries next beat
                    logs.event("warning", self.course, "heartbeat_failed", self.run_id, error=describe(exc))

    def release(self):
        """Stop the heartbeat."""
        self._stop.set()
        beat, self._beat = self._beat, None
        if beat is not None and beat is not threading.current_thread():
            beat.join()


def claim(cfg, course, run_id, state):
    """Win a course for ``run_id`` by moving it to ``state`` with a conditional write.

    Refuse when a runner holds an unexpired lease on it; an expired one is taken over.
    """
    record, etag = read(cfg, course)
    if lease_alive(record):
        raise ConcurrentRun(f"course {course}: held by {holder(record)}; wait for it, "
                            f"or after that runner is gone and its lease expires, re-run")
    result = Claim(cfg, course, run_id, record, etag)
    result.move(state)
    return result


def effective_state(record, marker_present):
    """Return the course's state with the marker as the source of truth for "committed"."""
    if marker_present:
        return PROMOTED
    state = record.get("state") if record else None
    if state == PROMOTED:  # the record says committed but the marker is gone: trust the marker
        return "marker_missing"
    if state in IN_PROGRESS and not lease_alive(record):
        return f"{state}_stale"
    return state


def repair_promoted(cfg, course, marker):
    """Catch the status table up with a present marker; return True if the record lagged.

    A run killed after its marker may have left the record unchanged, or the
    record changed but its ``promoted`` event unwritten: both are restored.
    """
    run_id = marker.get("run_id", "")
    record, etag = read(cfg, course)
    if record and record.get("state") == PROMOTED and record.get("run_id") == run_id:
        layout = Layout(cfg, course)
        if not any(o["Key"].endswith(f"-{run_id}-{PROMOTED}.json") for o in s3.list_objects(cfg, layout.events)):
            Claim(cfg, course, run_id, record, None).event(PROMOTED, repaired=True)
        return False
    fixed = dict(record or {"course_id": str(course), "created_at": marker.get("committed_at")})
    fixed.update(state=PROMOTED, run_id=marker.get("run_id"), transcripts=marker.get("transcripts"),
                 bytes=marker.get("bytes"), error=None, updated_at=iso(now()))
    fixed.pop("lease_expires_at", None)
    layout, meta = Layout(cfg, course), s3.tool_metadata(course, marker.get("run_id", ""))
    try:
        s3.put_json(cfg, layout.record, fixed, metadata=meta, if_none_match=etag is None,
                    if_match=f'"{etag}"' if etag else None)
    except s3.PreconditionFailed:
        return False  # someone else caught it up, or moved it on
    Claim(cfg, course, marker.get("run_id"), fixed, None).event(PROMOTED, repaired=True)
    return True


def table(cfg, course=None):
    """Return the status table as a DataFrame, one row per course, marker-checked."""
    from .layout import parse_course_id
    from urllib.parse import unquote

    if course is not None:
        keys = [Layout(cfg, parse_course_id(course)).record]
    else:
        prefix = f"{cfg.state_prefix}/courses/"
        keys = [o["Key"] for o in s3.list_objects(cfg, prefix) if o["Key"].endswith(".json")]

    def row(key):
        record, _ = s3.get_json(cfg, key)
        if record is None:
            return None
        course_key = parse_course_id(record.get("course_id") or unquote(key.rsplit("/", 1)[1][:-5]))
        marker = s3.head(cfg, Layout(cfg, course_key).marker) is not None
        return {**{c: record.get(c) for c in COLUMNS}, "state": effective_state(record, marker)}

    rows = [r for r in s3.run_all(cfg, row, keys) if r]
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("course_id", ignore_index=True)


def describe(exc):
    """Return a one-line reason for an exception, fit for the record and the log."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = " ".join(str(exc).split())
    return text if text.startswith("course ") else f"{type(exc).__name__}: {text}"


def record_failure(claim, exc):
    """Move a claimed course to failed for ``exc``; never mask ``exc`` with a second error."""
    if claim.lost:
        return
    try:
        claim.move(FAILED, error=describe(exc))
    except Exception as err:  # S3 may be the thing that failed; the original error matters more
        logs.event("error", claim.course, "status_write_failed", claim.run_id, error=describe(err))
        claim.release()
