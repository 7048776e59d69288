"""Show which courses are ready for Phase II, and for each one that is not, why and what to run next."""

from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from etl.batch.migrate import select
from etl.model.errors import EtlError
from etl.model.layout import parse_course_id
from etl.protocol import phase2, state
from etl.review import views
from etl.verify import verify


def report(cfg, courses="all", modulestore_db=None, workers=8):
    """Return the Phase II readiness view: one row per course, with ``ready`` when verify passes.

    Columns: course_id, contentstore_count, live_count, marker_count, state,
    last_error, ready, reason, next_step, phase2. ``ready`` is verify's verdict;
    ``phase2`` says where the course is in Open edX (``etl.protocol.phase2``).
    ``courses="all"`` covers every known course and every course in the status
    table.
    """
    ids, unresolved = select(cfg, courses, modulestore_db)
    table = views.status(cfg)
    if isinstance(courses, str) and courses == "all":
        ids = sorted(set(ids) | set(table["course_id"]))
    records = table.set_index("course_id").to_dict("index") if len(table) else {}

    def row(course_id):
        record, epoch = records.get(course_id, {}), None
        try:
            result = verify(cfg, course_id)
            counts = (result.contentstore_count, result.live_count, result.marker_count, result.ok)
            problems, epoch = result.problems, result.epoch
        except EtlError as err:
            counts, record, problems = (None, None, None, False), dict(record, error=str(err)), [str(err)]
        course = parse_course_id(course_id)
        where = phase2.column(cfg, course, epoch, known=record.get("phase2"))  # the status table's, if it has one
        current = record.get("state") or ("promoted" if counts[3] else None)
        reason, step = (None, None) if counts[3] else why_not_ready(course_id, current, record, problems)
        return {"course_id": course_id, "contentstore_count": counts[0], "live_count": counts[1],
                "marker_count": counts[2], "state": current, "last_error": record.get("error"),
                "ready": bool(counts[3]), "reason": reason, "next_step": step, "phase2": where}

    with ThreadPoolExecutor(workers, thread_name_prefix="report") as pool:
        rows = list(pool.map(row, ids))
    # Old-style transcripts whose org and course match no course document have no run: no course can migrate them.
    rows += [{"course_id": f"unresolved: {entry['what']}", "state": None, "ready": False, "reason": entry["reason"],
              "next_step": "import the course into Studio (or delete the stray transcripts there); `python -m etl "
                           "migrate --all` reports the group until then", "phase2": "not committed"}
             for entry in unresolved]
    columns = ["course_id", "contentstore_count", "live_count", "marker_count", "state", "last_error", "ready",
               "reason", "next_step", "phase2"]
    df = pd.DataFrame(rows, columns=columns)
    for column in ("contentstore_count", "live_count", "marker_count"):
        df[column] = df[column].astype("Int64")
    return df


def unreachable(df):
    """Return the line naming each ready course Phase II cannot reach, and why, or None when there is none."""
    stuck = df[df["ready"] & df["phase2"].map(phase2.unreachable)]
    if not len(stuck):
        return None
    said = "; ".join(f"{c} ({p})" for c, p in zip(stuck["course_id"], stuck["phase2"]))
    return f"{len(stuck)} ready course(s) Phase II cannot reach yet: {said}"


def notes(cfg, df):
    """Return the report's closing lines: ready courses Phase II cannot reach, and the shared-video families."""
    held = [c for c, p in zip(df["course_id"], df["phase2"]) if "held back" in p or "shared_" in p]
    summaries = dict(zip(held, [phase2.read(cfg, parse_course_id(c)) for c in held]))
    lines = [line for line in (unreachable(df), phase2.families(summaries)) if line]
    return "\n".join(lines) or None


def why_not_ready(course_id, current, record, problems):
    """Return (reason, next step) for a course that is not ready for Phase II."""
    again = f"python -m etl migrate {course_id}"
    resume = "python -m etl migrate --all` (one re-run resumes every such course), or `" + again
    if current == state.PROMOTED:
        return "; ".join(problems), f"run `python -m etl rollback {course_id} --force`, then `{again}`"
    if current in (None, state.ROLLED_BACK):
        return "not migrated", f"run `{resume}`"
    if current == state.FAILED:
        return f"failed: {record.get('error')}", f"fix the cause, then run `{resume}`"
    if current == state.STAGED:
        return "staged, not promoted", f"run `{resume}`"
    if current == "marker_missing":
        return ("the status record says promoted but the commit key holds no commit", f"run `{resume}`")
    if current == state.IN_DOUBT:
        return ("in doubt: a run sent its commit and could not read it back; every object was kept",
                f"run `{resume}`, which reads the commit key and finishes")
    if current.endswith("_stale"):
        return f"left {current[:-6]} by a runner that stopped", f"run `{resume}`"
    return f"{current} by a runner at work on it now", "wait for it to finish, then run report again"
