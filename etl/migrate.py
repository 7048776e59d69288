"""Migrate many courses: one transaction each, resumable, in parallel, with a plan for mock runs.

The batch keeps no local state. What it needs to resume lives in S3: the commit
markers (promoted courses are skipped) and the status table (a course left
mid-way is rolled back and redone, or its promote finished). So a killed batch,
re-run with the same arguments on any machine, carries on where it stopped.
"""

import time
from concurrent.futures import ThreadPoolExecutor, wait, FIRST_COMPLETED
from dataclasses import dataclass, field

import pandas as pd

from . import contentstore, logs, marker, parse, probe, s3, state
from .cleanup import remove_tool_objects
from .discover import all_courses
from .errors import AlreadyPromoted, BatchFailed, ConcurrentRun, Conflict, EtlError, NotStaged, UsageError
from .extract import extract_course, unknown_course
from .known import refuse_unknown
from .layout import Layout, parse_course_id
from .progress import bar
from .promote import promote, promote_staged
from .verify import VerifyResult, verify, verify_course

OUTCOMES = ["promoted", "skipped", "failed", "claimed", "conflict", "migrate", "queued", "unresolved"]
COLUMNS = ["course_id", "outcome", "transcripts", "bytes", "parse_problems", "attempts", "seconds", "run_id",
           "ready", "error"]


@dataclass
class Summary:
    """What a batch did (or, for a dry run, would do), course by course."""

    dry_run: bool
    courses: pd.DataFrame
    unresolved: list = field(default_factory=list)
    seconds: float = 0.0

    def count(self, outcome):
        return int((self.courses["outcome"] == outcome).sum()) if len(self.courses) else 0

    @property
    def ok(self):
        """True when no course failed."""
        return self.count("failed") == 0

    @property
    def not_ready(self):
        """Courses promoted or skipped whose verify did not pass (edited since promote, for example)."""
        done = self.courses[self.courses["outcome"].isin(["promoted", "skipped"])]
        return done[done["ready"] == False]  # noqa: E712 (pandas element-wise)

    @property
    def exit_code(self):
        """4 if any course failed; else 3 if any was held or in conflict; else 5 if any is not verified; else 0."""
        if not self.ok:
            return 4
        if not self.dry_run and (self.count("claimed") or self.count("conflict")):
            return 3
        if not self.dry_run and len(self.not_ready):
            return 5
        return 0

    @property
    def failure(self):
        """Return the one line that explains a non-zero exit code, or None."""
        if not self.ok:
            return (f"{self.count('failed')} of {len(self.courses)} courses failed; fix the causes above, "
                    "then re-run the same command to resume")
        undone = self.count("claimed") + self.count("conflict")
        if self.exit_code == 3:
            return (f"{undone} of {len(self.courses)} courses were left undone ({self.count('claimed')} held by "
                    f"another runner: re-run once it is done; {self.count('conflict')} in conflict: move the "
                    "objects named above away, then re-run)")
        if self.exit_code == 5:
            return (f"{len(self.not_ready)} of {len(self.courses)} courses are promoted but not ready for Phase II; "
                    "see `python -m etl report` for why and what to do")
        return None

    def __str__(self):
        return self.text()

    def plan_table(self):
        """Return the plan's rows, one per course: what would happen to it, with its transcripts and bytes."""
        would = {"migrate": "migrate", "skipped": "skip: promoted", "conflict": "refuse: conflict",
                 "claimed": "wait: held", "failed": "fail"}
        df = self.courses.assign(would=self.courses["outcome"].map(would).fillna(self.courses["outcome"]))
        df = df[["course_id", "would", "transcripts", "bytes", "parse_problems", "error"]]
        df = df.astype(object).where(df.notna(), "")
        return df.to_string(index=False, max_colwidth=100) if len(df) else "(no courses)"

    def check(self):
        """Raise BatchFailed, naming how many, when any course failed (the CLI's exit code 4)."""
        if not self.ok:
            raise BatchFailed(self.failure)
        return self

    @property
    def transcripts(self):
        done = self.courses[self.courses["outcome"] == ("migrate" if self.dry_run else "promoted")]
        return int(done["transcripts"].fillna(0).sum())

    @property
    def bytes(self):
        done = self.courses[self.courses["outcome"] == ("migrate" if self.dry_run else "promoted")]
        return int(done["bytes"].fillna(0).sum())

    def to_dict(self):
        counts = {o: self.count(o) for o in OUTCOMES if o != "unresolved"}
        return {"dry_run": self.dry_run, "courses": len(self.courses), **counts,
                "unresolved": self.unresolved, "transcripts": self.transcripts, "bytes": self.bytes,
                "seconds": round(self.seconds, 3),
                "transcripts_per_second": round(self.transcripts / self.seconds, 1) if self.seconds else None,
                "rows": self.courses.astype(object).where(self.courses.notna(), None).to_dict("records")}

    def text(self):
        """Return the summary an operator reads at the end of a batch."""
        lines = []
        if self.dry_run:
            lines.append(f"plan for {len(self.courses)} courses (dry run: nothing was written):")
            lines.append(f"  to migrate: {self.count('migrate')} courses, {self.transcripts} transcripts, "
                         f"{self.bytes} bytes, {int(self.courses['parse_problems'].fillna(0).sum())} parse problems")
            lines.append(f"  to skip (already promoted): {self.count('skipped')}")
            lines.append(f"  in conflict (live objects without a marker): {self.count('conflict')}")
            lines.append(f"  held by another runner: {self.count('claimed')}")
            lines.append(f"  would fail: {self.count('failed')}")
            lines += ["", "course by course:"] + ["  " + line for line in self.plan_table().splitlines()]
        else:
            rate = f"{self.transcripts / self.seconds:.1f}" if self.seconds else "-"
            n = len(self.courses)
            lines.append(f"{n} course{'' if n == 1 else 's'} in {self.seconds:.1f} s: {self.count('promoted')} "
                         f"promoted, {self.count('skipped')} skipped (already promoted), {self.count('failed')} failed, "
                         f"{self.count('claimed')} held by another runner, {self.count('conflict')} in conflict")
            lines.append(f"  {self.transcripts} transcripts, {self.bytes} bytes, {rate} transcripts/s")
            if self.count("queued"):
                lines.append(f"  {self.count('queued')} courses queued for the Celery workers; follow them with "
                             "`python -m etl report` or `status`, or re-run this command without --no-wait")
        for outcome in ("failed", "conflict", "claimed"):
            for row in self.courses[self.courses["outcome"] == outcome].itertuples():
                lines.append(f"  {outcome}: {row.course_id}: {row.error}")
        if not self.dry_run:
            for row in self.not_ready.itertuples():
                lines.append(f"  not ready: {row.course_id}: {row.error}")
        for entry in self.unresolved:
            lines.append(f"  unresolved: {entry['what']}: {entry['reason']}")
        return "\n".join(lines)


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


def migrate(cfg, courses, workers=4, dry_run=False, retries=1, modulestore_db=None, engine="threads", wait=True,
            vacuum=False):
    """Migrate courses, each as one transaction: extract, promote, verify; return a Summary.

    ``courses`` is a list of course ids or "all". Promoted courses are skipped;
    a course left mid-way by a killed run is rolled back and redone (or its
    promote finished); a failing course is tried ``retries`` more times. A
    course another runner holds is left to it. With ``dry_run`` nothing is
    written anywhere: the Summary is the plan. ``engine="celery"`` sends one
    task per course to the Celery workers (``etl.tasks``) instead of running
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
        rows = _on_celery(cfg, ids, retries, wait)
    else:
        work = _plan_one if dry_run else (lambda c, i: migrate_course(c, i, retries, vacuum))
        rows = _on_threads(cfg, ids, workers, work)
        if not dry_run:
            rows = _wait_for_held(cfg, rows, workers, work)
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values("course_id", ignore_index=True)
    for column in ("transcripts", "bytes", "parse_problems", "attempts"):
        df[column] = pd.to_numeric(df[column]).astype("Int64")
    summary = Summary(dry_run, df, unresolved, time.monotonic() - started)
    logs.event("info", "*", "batch_done" if not dry_run else "plan_done",
               **{k: v for k, v in summary.to_dict().items() if k not in ("rows", "unresolved")})
    return summary


def _on_celery(cfg, ids, retries, wait):
    """Skip promoted courses here, send one task per other course, and collect their rows (unless not waiting)."""
    from . import tasks

    committed = s3.run_all(cfg, lambda c: marker.is_committed(cfg, parse_course_id(c)), ids)
    rows = [_done(_row(c, "skipped", attempts=0), time.monotonic()) for c, done in zip(ids, committed) if done]
    todo = [c for c, done in zip(ids, committed) if not done]
    results = tasks.enqueue(cfg, todo, retries)
    if not wait:
        return rows + [_row(c, "queued") for c in todo]
    with bar(cfg, len(ids), "courses", unit="course", leave=True) as progress:
        progress.update(len(rows))
        rows += [_log_row(row) for row in tasks.collect(results, progress)]  # a worker timed and returned each
    return rows


HELD_POLL_SECONDS = 2.0


def _wait_for_held(cfg, rows, workers, work):
    """Watch the courses another runner held until each is promoted, or its lease runs out and this batch takes it.

    A batch promises every course when it exits 0: two batches over the same
    courses both end with every course promoted, and both say so. A holder that
    keeps renewing for longer than twice its lease is given up on (``claimed``).
    """
    held = [r for r in rows if r["outcome"] == "claimed"]
    if not held:
        return rows
    done = [r for r in rows if r["outcome"] != "claimed"]
    logs.event("info", "*", "waiting_for_held", courses=len(held),
               note="another runner holds them; this batch finishes them if it stops")
    give_up = time.monotonic() + 2 * cfg.lease_seconds + 60
    while held and time.monotonic() < give_up:
        time.sleep(HELD_POLL_SECONDS)
        again = _on_threads(cfg, [r["course_id"] for r in held], workers, work, bar_label="held courses")
        done += [r for r in again if r["outcome"] != "claimed"]
        held = [r for r in again if r["outcome"] == "claimed"]
    return done + held


def _on_threads(cfg, ids, workers, work, bar_label="courses"):
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
            raise Interrupted(_partial(rows, len(ids))) from stop
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return rows


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in a batch, with what was done before the stop."""

    def __init__(self, partial):
        super().__init__(partial)
        self.partial = partial


def _partial(rows, total):
    counts = {o: sum(1 for r in rows if r["outcome"] == o) for o in ("promoted", "skipped", "failed", "claimed",
                                                                     "conflict")}
    said = ", ".join(f"{n} {o}" for o, n in counts.items() if n) or "none finished"
    return f"before the stop: {said}; {total - len(rows)} of {total} courses left undone"


def _row(course_id, outcome, **fields):
    return {"course_id": course_id, "outcome": outcome, **fields}


def migrate_course(cfg, course_id, retries=1, vacuum=False):
    """Run one course's transaction, retrying transient failures; return its summary row (a dict).

    The unit of work of every batch: the thread pool and the Celery task run exactly this.
    """
    row = _migrate_course(cfg, course_id, retries)
    if vacuum and row["outcome"] in ("promoted", "skipped"):
        from .vacuum import vacuum as vacuum_course

        try:
            vacuum_course(cfg, course_id)
        except EtlError as err:  # the course is done; its old epochs wait for the next vacuum
            logs.event("warning", course_id, "vacuum_failed", error=state.describe(err))
    return row


def _migrate_course(cfg, course_id, retries):
    started, error = time.monotonic(), None
    for attempt in range(1, retries + 2):
        try:
            course = parse_course_id(course_id)
            looked = state.look(cfg, course)
            if looked.seen.committed:
                state.refuse_promoted(cfg, course, looked.seen.commit)
            record = looked.record
            if (record and record.get("state") in (state.STAGED, state.PROMOTING) and record.get("staged_epoch")
                    and not state.lease_alive(record, cfg.clock)):
                logs.event("debug", course, "resume", record.get("run_id"), state=record.get("state"),
                           staged_epoch=record.get("staged_epoch"))
                extracted = None  # rolled forward into a new epoch: reconcile and the source check guard it
                promoted, published = promote(cfg, course_id), None
            else:  # one claim from extract to commit: promote trusts what this runner just staged
                extracted, staged = extract_course(cfg, course_id, looked, hold=True)
                promoted, published = promote_staged(cfg, course, staged)
            try:
                checked = verify_course(cfg, course, published)
            except EtlError as err:  # committed; only the check after it failed: report it, go on
                checked = VerifyResult(str(course), problems=[f"verify failed: {state.describe(err)}"])
            if not checked.ok:
                logs.event("warning", course, "not_ready", promoted.run_id, problems=checked.problems)
            return _done(_row(course_id, "promoted", transcripts=promoted.transcripts, bytes=promoted.bytes,
                              parse_problems=extracted.parse_problems if extracted else None, attempts=attempt,
                              run_id=promoted.run_id, ready=checked.ok,
                              error=None if checked.ok else "; ".join(checked.problems)), started)
        except AlreadyPromoted:
            try:
                checked = verify(cfg, course_id)  # committed before: still what the contentstore holds?
            except EtlError as err:  # the course is committed; only its check failed: report it, go on
                return _done(_row(course_id, "skipped", attempts=attempt - 1, ready=False,
                                  error=f"verify failed: {state.describe(err)}"), started)
            return _done(_row(course_id, "skipped", attempts=attempt - 1, ready=checked.ok,
                              error=None if checked.ok else "; ".join(checked.problems)), started)
        except (ConcurrentRun, NotStaged) as err:  # another runner has the course: the winner finishes it
            if _committed(cfg, course_id):
                return _done(_row(course_id, "skipped", attempts=attempt), started)
            return _done(_row(course_id, "claimed", attempts=attempt, error=str(err)), started)
        except Conflict as err:
            return _done(_row(course_id, "conflict", attempts=attempt, error=str(err)), started)
        except Exception as err:  # the course was rolled back; retry only what a retry can fix
            error = state.describe(err)
            if _committed(cfg, course_id):  # another runner won the race to promote it
                return _done(_row(course_id, "skipped", attempts=attempt), started)
            if not getattr(err, "transient", False) or attempt > retries:
                return _done(_row(course_id, "failed", attempts=attempt, error=error), started)
            logs.event("warning", course_id, "retry", attempt=attempt, error=error)


def _committed(cfg, course_id):
    try:
        return marker.is_committed(cfg, parse_course_id(course_id))
    except EtlError:
        return False


def _done(row, started):
    row["seconds"] = round(time.monotonic() - started, 3)
    return _log_row(row)


def _log_row(row):
    """Log one course's outcome as the batch's line for it; return the row."""
    level = "warning" if row["outcome"] in ("failed", "conflict") else "info"
    logs.event(level, row["course_id"], f"course_{row['outcome']}", row.get("run_id"),
               **{k: row.get(k) for k in ("transcripts", "bytes", "attempts", "seconds", "error")})
    return row


def _plan_one(cfg, course_id):
    """Say what migrate would do with one course, reading the contentstore and S3 only."""
    started = time.monotonic()
    try:
        course = parse_course_id(course_id)
        layout = Layout(cfg, course)
        if marker.is_committed(cfg, course):
            return _done(_row(course_id, "skipped"), started)
        record, _ = state.read(cfg, course)
        if state.lease_alive(record, cfg.clock):
            return _done(_row(course_id, "claimed", error=f"held by {state.holder(record)}"), started)
        live = [o for o in s3.list_objects(cfg, layout.live_root) if o["Key"] != layout.legacy_marker]
        foreign = [k.rsplit("/", 1)[1] for k in remove_tool_objects(cfg, course, "", dry_run=True, listed=live)[1]]
        if foreign:
            return _done(_row(course_id, "conflict", error=f"{len(foreign)} live objects without a marker that "
                              f"the tool did not write, e.g. {foreign[0]!r}"), started)
        assets = contentstore.find_transcripts(cfg, course)
        if not record and not assets and not contentstore.course_known(cfg, course):
            raise unknown_course(cfg, course)
        for asset in assets:
            layout.asset_keys(state.epoch_of(record) + 1, asset.name)
        problems = 0
        for asset, data, _, _ in contentstore.scan(cfg, course, assets):
            ok, error = parse.check(asset.name, data) if data is not None else (True, None)
            if not ok:
                problems += 1
                logs.event("warning", course, "parse_problem", asset=asset.name, error=error)
        return _done(_row(course_id, "migrate", transcripts=len(assets), bytes=sum(a.length for a in assets),
                          parse_problems=problems), started)
    except EtlError as err:
        return _done(_row(course_id, "failed", error=str(err)), started)


def report(cfg, courses="all", modulestore_db=None, workers=8):
    """Return the Phase II readiness view: one row per course, with ``ready`` when verify passes.

    Columns: course_id, contentstore_count, live_count, marker_count, state,
    last_error, ready. ``courses="all"`` covers every known course and every
    course in the status table.
    """
    ids, _ = select(cfg, courses, modulestore_db)
    table = state.status(cfg)
    if isinstance(courses, str) and courses == "all":
        ids = sorted(set(ids) | set(table["course_id"]))
    records = table.set_index("course_id").to_dict("index") if len(table) else {}

    def row(course_id):
        record = records.get(course_id, {})
        try:
            result = verify(cfg, course_id)
            counts = (result.contentstore_count, result.live_count, result.marker_count, result.ok)
            problems = result.problems
        except EtlError as err:
            counts, record, problems = (None, None, None, False), dict(record, error=str(err)), [str(err)]
        current = record.get("state") or ("promoted" if counts[3] else None)
        reason, step = (None, None) if counts[3] else why_not_ready(course_id, current, record, problems)
        return {"course_id": course_id, "contentstore_count": counts[0], "live_count": counts[1],
                "marker_count": counts[2], "state": current, "last_error": record.get("error"),
                "ready": bool(counts[3]), "reason": reason, "next_step": step}

    with ThreadPoolExecutor(workers, thread_name_prefix="report") as pool:
        rows = list(pool.map(row, ids))
    columns = ["course_id", "contentstore_count", "live_count", "marker_count", "state", "last_error", "ready",
               "reason", "next_step"]
    df = pd.DataFrame(rows, columns=columns)
    for column in ("contentstore_count", "live_count", "marker_count"):
        df[column] = df[column].astype("Int64")
    return df


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
        return ("the status record says promoted but there is no commit marker",
                f"run `python -m etl rollback {course_id} --force`, then `{again}`")
    if current.endswith("_stale"):
        return f"left {current[:-6]} by a runner that stopped", f"run `{resume}`"
    return f"{current} by a runner at work on it now", "wait for it to finish, then run report again"
