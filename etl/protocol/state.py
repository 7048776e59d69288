"""The migration status table: one record per course, its event log, and the course state machine.

The table lives in S3 under ``state_prefix`` so every runner sees the same one:
``{state}/courses/{course}.json`` is the course's current record, changed only
by conditional writes (If-Match on its ETag, If-None-Match for the first one).
The record carries its own event log (``history``): each transition appends its
entry in the same conditional write that makes it, so a state and its log line
can never disagree. When the log outgrows ``HISTORY_LIMIT`` its oldest entries
move to ``{state}/events/{course}/``, one object per archive, never rewritten.

Runners change a record only through a claim (``etl.protocol.claims``). The
commit marker, not this table, decides "promoted": readers reconcile the two
with ``effective_state``.
"""

import json
import os
import socket
from datetime import datetime, timedelta, timezone

from etl.model import lease
from etl.model.errors import NotStaged
from etl.model.layout import Layout
from etl.store import s3


EXTRACTING, STAGED, PROMOTING, PROMOTED = "extracting", "staged", "promoting", "promoted"
FAILED, ROLLING_BACK, ROLLED_BACK = "failed", "rolling_back", "rolled_back"
IN_DOUBT = "in_doubt"  # the commit was sent and could not be read back: the commit key decides, on the next run
IN_PROGRESS = {EXTRACTING, PROMOTING, ROLLING_BACK}
TRANSITIONS = {
    None: {EXTRACTING, ROLLING_BACK},
    EXTRACTING: {STAGED, PROMOTING, FAILED},  # straight to promoting: the runner that staged it promotes it
    STAGED: {EXTRACTING, PROMOTING, ROLLING_BACK},
    PROMOTING: {PROMOTED, FAILED, IN_DOUBT},
    # A claim never starts over a commit (claims.claim refuses it): a record that says promoted while the commit
    # key holds no commit is behind the key, and the course is extracted again.
    PROMOTED: {ROLLING_BACK, EXTRACTING},
    FAILED: {EXTRACTING, ROLLING_BACK},
    ROLLING_BACK: {ROLLED_BACK, FAILED},
    ROLLED_BACK: {EXTRACTING, ROLLING_BACK},
    IN_DOUBT: {EXTRACTING, PROMOTING, ROLLING_BACK},
}
# A runner that finds a course in progress under an expired lease takes it over:
# it rolls the leftovers back, or finishes a promote of the same run.
TAKEOVER = {EXTRACTING: {EXTRACTING, ROLLING_BACK}, PROMOTING: {PROMOTING, EXTRACTING, ROLLING_BACK},
            ROLLING_BACK: {ROLLING_BACK, EXTRACTING}}
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
    return read_record(cfg, Layout.of(cfg, course).record)


def read_record(cfg, key):
    """Return (record, etag) of the record at ``key``, as ``read`` does; ``_write`` is the nonce of its write."""
    data, tag, meta, age = s3.fetch_aged(cfg, key)
    if data is None:
        return None, None
    return dict(json.loads(data), _age=age, _write=(meta or {}).get(s3.META_WRITE)), tag


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


def entry(event, run_id, at=None, **fields):
    """Return one history entry: the event, when (now unless ``at``), which run on which host and pid, its fields."""
    return {"at": at or iso(now()), "event": event, "run_id": run_id, "host": socket.gethostname(),
            "pid": os.getpid(), **{k: v for k, v in fields.items() if v is not None}}


def archive(cfg, course, run_id, record):
    """Return the record to write: when its history outgrows ``HISTORY_LIMIT``, all but the last
    ``HISTORY_KEPT`` entries move to an events object first.

    The archive's key names the record version it is cut from, and the record
    lists its archives (``archives``): an archive whose record write then loses
    its race is never listed, so ``history`` never shows its entries twice.
    """
    entries = record["history"]
    if len(entries) <= HISTORY_LIMIT:
        return record
    old, kept = entries[:-HISTORY_KEPT], entries[-HISTORY_KEPT:]
    stamp = lambda e: e["at"].replace(":", "").replace("-", "")  # noqa: E731
    version = int(record.get("version") or 0) + 1
    key = f"{Layout.of(cfg, course).events}v{version:010d}-{stamp(old[0])}-{stamp(old[-1])}.json"
    try:
        s3.put_json(cfg, key, {"course_id": str(course), "history": old}, if_none_match=True,
                    metadata=s3.tool_metadata(course, run_id))
    except s3.PreconditionFailed:
        pass  # an earlier attempt of this very archive landed
    return dict(record, history=kept, archives=list(record.get("archives") or []) + [key])


def staged_run(course, record):
    """Return (run id, epoch) of the course's staged (or promoting) run from its record; refuse when there is none."""
    if not record or record.get("state") not in (STAGED, PROMOTING, IN_DOUBT):
        current = record.get("state") if record else "never extracted"
        raise NotStaged(f"course {course} has no staged run ({current}); "
                        f"run `python -m etl extract {course}` first")
    if not record.get("staged_epoch"):
        raise NotStaged(f"course {course} was staged by version 0.3.0 or earlier, whose staging runs this version "
                        f"does not promote; run `python -m etl extract {course}` again")
    return record["run_id"], int(record["staged_epoch"])
