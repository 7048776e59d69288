"""Run a batch's courses: on threads here, or as Celery tasks on the workers; wait for courses others hold."""

import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from etl.batch.summary import WAITING, Interrupted, finish_row, log_row, outcome_row, partial
from etl.model import logs
from etl.model.layout import parse_course_id
from etl.model.progress import bar
from etl.protocol import marker
from etl.store import pool


def on_celery(cfg, ids, retries, wait):
    """Skip promoted courses here, send one task per other course, and collect their rows (unless not waiting)."""
    from etl.batch import tasks  # Celery is the [celery] extra: imported only when a batch runs on it

    committed = pool.run_all(cfg, lambda c: marker.is_committed(cfg, parse_course_id(c)), ids)
    rows = [finish_row(outcome_row(c, "skipped", attempts=0), time.monotonic()) for c, done in zip(ids, committed) if done]
    todo = [c for c, done in zip(ids, committed) if not done]
    results = tasks.enqueue(cfg, todo, retries)
    if not wait:
        return rows + [outcome_row(c, "queued") for c in todo]
    with bar(cfg, len(ids), "courses", unit="course", leave=True) as progress:
        progress.update(len(rows))
        rows += [log_row(row) for row in tasks.collect(results, progress)]  # a worker timed and returned each
    return rows


HELD_POLL_SECONDS = 2.0


def wait_for_held(cfg, rows, workers, work):
    """Watch the courses another runner held until each is promoted, or its lease runs out and this batch takes it.

    A batch promises every course when it exits 0: two batches over the same
    courses both end with every course promoted, and both say so. A holder that
    keeps renewing for longer than twice its lease is given up on (``claimed``).
    """
    held = [r for r in rows if r["outcome"] == "claimed"]
    if not held:
        return rows
    done = [r for r in rows if r["outcome"] != "claimed"]
    ids = [r["course_id"] for r in held]
    logs.event("info", "*", "waiting_for_held", courses=len(held),
               note="another runner holds them; this batch finishes them if it stops")
    give_up = time.monotonic() + 2 * cfg.lease_seconds + 60
    WAITING.update(ids)
    try:
        while held and time.monotonic() < give_up:
            time.sleep(HELD_POLL_SECONDS)
            again = on_threads(cfg, [r["course_id"] for r in held], workers, work, bar_label="held courses")
            done += [r for r in again if r["outcome"] != "claimed"]
            held = [r for r in again if r["outcome"] == "claimed"]
    finally:
        WAITING.difference_update(ids)
    for row in held:
        log_row(dict(row, error=f"still held after {round(2 * cfg.lease_seconds + 60)} s: {row.get('error')}"))
    logs.event("info", "*", "waited_for_held", courses=len(ids), finished=len(ids) - len(held), still_held=len(held))
    return done + held


def on_threads(cfg, ids, workers, work, bar_label="courses"):
    """Run ``work`` for every course on ``workers`` threads here; return the rows."""
    rows = []
    with ThreadPoolExecutor(workers, thread_name_prefix="course") as pool, \
            bar(cfg, len(ids), bar_label, unit="course", leave=True) as progress:
        pending = {pool.submit(work, cfg, course_id) for course_id in ids}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    rows.append(future.result())
                    progress.update(1)
        except KeyboardInterrupt as stop:
            for future in pending:
                future.cancel()
            wait(pending)  # the courses already running finish (or roll back) before the stop is reported
            rows += [f.result() for f in pending if f.done() and not f.cancelled() and f.exception() is None]
            raise Interrupted(partial(rows, len(ids))) from stop
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return rows
