"""Migrate many courses: one transaction each, resumable, in parallel, with a plan for mock runs.

The batch keeps no local state. What it needs to resume lives in S3: the commit
markers (promoted courses are skipped) and the status table (a course left
mid-way is rolled back and redone, or its promote finished). So a killed batch,
re-run with the same arguments on any machine, carries on where it stopped.
"""

import time

import pandas as pd

from etl.batch.engines import on_celery, on_threads, wait_for_held
from etl.batch.plan import plan_one
from etl.batch.summary import COLUMNS, Summary, estimate
from etl.batch.unit import migrate_course
from etl.model import logs
from etl.model.errors import UsageError
from etl.protocol.known import refuse_unknown
from etl.source.discover import all_courses
from etl.store import probe, s3


def select(cfg, courses, modulestore_db=None):
    """Return (course ids, unresolved entries) for a list of ids or the string "all"."""
    if isinstance(courses, str) and courses == "all":
        return all_courses(cfg, modulestore_db)
    if isinstance(courses, str):
        courses = [courses]
    ids = list(dict.fromkeys(str(c) for c in courses))
    if not ids:
        raise UsageError("no courses given; name course ids, or use --courses FILE or --all")
    refuse_unknown(cfg, ids)
    return ids, []


def round_trip(cfg, tries=3):
    """Return the median seconds of a few HEAD requests to the bucket: what one S3 request costs from here."""
    times = []
    for _ in range(tries):
        started = time.monotonic()
        s3.head(cfg, f"{cfg.state_prefix}/courses/")
        times.append(time.monotonic() - started)
    return sorted(times)[len(times) // 2]


def migrate(cfg, courses, workers=4, dry_run=False, retries=1, modulestore_db=None, engine="threads", wait=True,
            vacuum=False):
    """Migrate courses, each as one transaction: extract, promote, verify; return a Summary.

    ``courses`` is a list of course ids or "all". Promoted courses are skipped;
    a course left mid-way by a killed run is rolled back and redone (or its
    promote finished); a failing course is tried ``retries`` more times. A
    course another runner holds is left to it. With ``dry_run`` nothing is
    written anywhere: the Summary is the plan. ``engine="celery"`` sends one
    task per course to the Celery workers (``etl.batch.tasks``) instead of running
    ``workers`` threads here; with ``wait=False`` it returns once they are queued.
    With ``vacuum`` each course's dead epochs older than the default retention
    are deleted once it is done (``etl.vacuum``).
    """
    if workers < 1 or retries < 0:
        raise UsageError("--workers must be at least 1 and --retries at least 0")
    if engine not in ("threads", "celery"):
        raise UsageError(f"engine {engine!r} is not threads or celery")
    started = time.monotonic()
    if not dry_run:
        probe.probe(cfg)  # a store that cannot hold the protocol is refused before any course is tried
    ids, unresolved = select(cfg, courses, modulestore_db)
    for entry in unresolved:
        logs.event("warning", entry["what"], "unresolved", reason=entry["reason"])
    if engine == "celery" and not dry_run:
        rows = on_celery(cfg, ids, retries, wait)
    else:
        work = plan_one if dry_run else (lambda c, i: migrate_course(c, i, retries, vacuum))
        rows = on_threads(cfg, ids, workers, work)
        if not dry_run:
            rows = wait_for_held(cfg, rows, workers, work)
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values("course_id", ignore_index=True)
    for column in ("transcripts", "bytes", "parse_problems", "attempts"):
        df[column] = pd.to_numeric(df[column]).astype("Int64")
    summary = Summary(dry_run, df, unresolved, time.monotonic() - started,
                      estimate(rows, workers, cfg.s3_concurrency, round_trip(cfg)) if dry_run else {})
    logs.event("info", "*", "batch_done" if not dry_run else "plan_done",
               **{k: v for k, v in summary.to_dict().items() if k not in ("rows", "unresolved")})
    return summary
