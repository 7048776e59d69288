"""Show the status table and a course's event log as DataFrames, with the commit marker deciding "promoted"."""

import json
from urllib.parse import unquote

import pandas as pd

from etl.model.errors import UsageError
from etl.model.layout import Layout, parse_course_id
from etl.protocol import marker, phase2
from etl.protocol.known import refuse_unknown
from etl.protocol.state import IN_PROGRESS, TRANSITIONS, effective_state, read, read_record
from etl.store import pool, s3


COLUMNS = ["course_id", "state", "run_id", "transcripts", "bytes", "updated_at", "error", "host", "pid", "phase2"]


HISTORY_COLUMNS = ["at", "event", "previous", "run_id", "host", "pid", "error", "details"]


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
    layout = Layout.of(cfg, course)
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
    if record is None and not entries:
        refuse_unknown(cfg, [course_id])  # known but never migrated: an empty log says so
    rows = [{**{c: e.get(c) for c in known},
             "details": json.dumps({k: v for k, v in e.items() if k not in known}, sort_keys=True)
             if set(e) - known else None} for e in sorted(entries, key=lambda e: e["at"])]
    df = pd.DataFrame(rows, columns=HISTORY_COLUMNS, dtype=object)
    df = df.where(df.notna(), None)
    df["pid"] = pd.to_numeric(df["pid"]).astype("Int64")
    return df


STATES = sorted(set(TRANSITIONS) - {None} | {f"{s}_stale" for s in IN_PROGRESS} | {"marker_missing"})


def check_state(state):
    """Refuse a ``--state`` that is not one a course can be shown in."""
    if state and state not in STATES:
        raise UsageError(f"--state {state!r} is not a state; choose one of {', '.join(STATES)}")


def status(cfg, course_id=None, *, state=""):
    """Show the migration status table, one row per course.

    The commit marker decides "promoted": a course whose record lags its marker
    reads as promoted, and one whose lease expired mid-run reads as ``*_stale``.

    Args:
        course_id: only this course.
        state: only courses in this state (failed, in_doubt, promoted, extracting_stale, marker_missing, ...).
    """
    check_state(state)
    if course_id is not None:
        keys = [Layout.of(cfg, parse_course_id(course_id)).record]
        if s3.head(cfg, keys[0]) is None:
            refuse_unknown(cfg, [course_id])  # known but never migrated: an empty table says so
    else:
        prefix = f"{cfg.state_prefix}/courses/"
        keys = [o["Key"] for o in s3.list_objects(cfg, prefix) if o["Key"].endswith(".json")]

    def row(key):
        record, _ = read_record(cfg, key)
        if record is None:
            return None
        course_key = parse_course_id(record.get("course_id") or unquote(key.rsplit("/", 1)[1][:-5]))
        seen, summary = pool.together(lambda: marker.read(cfg, course_key), lambda: phase2.read(cfg, course_key))
        epoch = int(seen.commit.get("epoch", 0)) if seen.committed else None
        return {**{c: record.get(c) for c in COLUMNS}, "state": effective_state(record, seen.committed, cfg.clock),
                "phase2": phase2.describe(course_key, summary, epoch)}

    rows = [r for r in pool.run_all(cfg, row, keys) if r]
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values("course_id", ignore_index=True)
    for column in ("transcripts", "bytes", "pid"):
        df[column] = pd.to_numeric(df[column]).astype("Int64")
    if not state:
        return df
    chosen = df[df["state"] == state].reset_index(drop=True)
    if not len(chosen) and len(df):  # say what was looked through, not that the table is empty
        chosen.attrs["empty"] = f"no course is {state} ({len(df)} course{'' if len(df) == 1 else 's'} in the status table)"
    return chosen
