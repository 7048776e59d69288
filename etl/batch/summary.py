"""Say what a batch did, course by course: one row per course, its outcome, and the batch's exit code."""

import time
from dataclasses import dataclass, field

import pandas as pd

from etl.model import logs
from etl.model.errors import BatchFailed


OUTCOMES = ["promoted", "skipped", "failed", "claimed", "conflict", "refused", "in_doubt", "migrate", "queued",
            "unresolved"]
FIXED_REQUESTS, PER_TRANSCRIPT, CHAINED, PROBE_REQUESTS = 13, 2, 9, 11  # README "Performance"; the plan test counts them
WAITING = set()  # courses a batch is polling while another runner holds them: their "still held" rows are DEBUG
COLUMNS = ["course_id", "outcome", "transcripts", "bytes", "parse_problems", "attempts", "seconds", "run_id",
           "ready", "error"]


@dataclass
class Summary:
    """What a batch did (or, for a dry run, would do), course by course."""

    dry_run: bool
    courses: pd.DataFrame
    unresolved: list = field(default_factory=list)
    seconds: float = 0.0
    cost: dict = field(default_factory=dict)  # a plan's estimate: S3 requests, bytes, seconds (``estimate``)

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
        """4 if any course failed; else 2 if any was refused; else 3 if any was held, in conflict or in doubt;
        else 5 if any is not verified; else 0."""
        if not self.ok:
            return 4
        if self.count("refused"):  # a plan's exit code predicts the run's
            return 2
        if self.count("claimed") or self.count("conflict") or self.count("in_doubt"):
            return 3
        if not self.dry_run and len(self.not_ready):
            return 5
        return 0

    @property
    def failure(self):
        """Return the one line that explains a non-zero exit code, or None."""
        if self.dry_run and self.exit_code:
            return (f"the plan predicts exit {self.exit_code} for the run: {self.count('failed')} would fail, "
                    f"{self.count('refused')} refused, {self.count('conflict')} in conflict, {self.count('claimed')} "
                    "held by another runner; nothing was written")
        if not self.ok:
            return (f"{self.count('failed')} of {len(self.courses)} courses failed; fix the causes above, "
                    "then re-run the same command to resume")
        undone = self.count("claimed") + self.count("conflict") + self.count("in_doubt")
        if self.exit_code == 2:
            return (f"{self.count('refused')} of {len(self.courses)} courses were refused: an object the tool did not "
                    "write holds their commit key; move the objects named above away, then re-run")
        if self.exit_code == 3:
            return (f"{undone} of {len(self.courses)} courses were left undone ({self.count('claimed')} held by "
                    f"another runner: re-run once it is done; {self.count('conflict')} in conflict: move the "
                    f"objects named above away, then re-run; {self.count('in_doubt')} in doubt: their commit could "
                    "not be read back, and everything was kept; re-run once S3 answers)")
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
                "seconds": round(self.seconds, 3), **({"cost": self.cost} if self.cost else {}),
                "transcripts_per_second": round(self.transcripts / self.seconds, 1) if self.seconds else None,
                "rows": self.courses.astype(object).where(self.courses.notna(), None).to_dict("records")}

    def text(self):
        """Return the summary an operator reads at the end of a batch."""
        lines = []
        if self.dry_run:
            lines.append(f"plan for {len(self.courses)} courses (dry run: nothing was written):")
            lines.append(f"  to migrate: {self.count('migrate')} courses, {self.transcripts} transcripts, "
                         f"{self.bytes} bytes, {int(self.courses['parse_problems'].fillna(0).sum())} parse problems")
            if self.cost:
                c = self.cost
                lines.append(f"  cost: about {c['requests']} S3 requests ({FIXED_REQUESTS} per course, "
                             f"{PER_TRANSCRIPT} per transcript, {PROBE_REQUESTS} for the store probe) and "
                             f"{c['bytes']} bytes read and put (copied again inside S3); at least {c['seconds']} s "
                             f"at --workers {c['workers']} and --s3-concurrency {c['s3_concurrency']}, from a "
                             f"round trip of {c['round_trip_ms']} ms to S3 measured now (contentstore reads not "
                             "counted)")
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
                         f"{self.count('claimed')} held by another runner, {self.count('conflict')} in conflict"
                         + (f", {self.count('refused')} refused" if self.count("refused") else "")
                         + (f", {self.count('in_doubt')} in doubt" if self.count("in_doubt") else ""))
            lines.append(f"  {self.transcripts} transcripts, {self.bytes} bytes, {rate} transcripts/s")
            if self.count("queued"):
                lines.append(f"  {self.count('queued')} courses queued for the Celery workers; `python -m etl tasks` "
                             "with the same courses shows what the workers did and refused, and why; or re-run "
                             "this command without --no-wait")
        for outcome in ("failed", "refused", "conflict", "in_doubt", "claimed"):
            for row in self.courses[self.courses["outcome"] == outcome].itertuples():
                lines.append(f"  {outcome}: {row.course_id}: {row.error}")
        if not self.dry_run:
            for row in self.not_ready.itertuples():
                lines.append(f"  not ready: {row.course_id}: {row.error}")
        for entry in self.unresolved:
            lines.append(f"  unresolved: {entry['what']}: {entry['reason']}")
        return "\n".join(lines)


def estimate(rows, workers, s3_concurrency, round_trip):
    """Return a plan's cost from the README's formula: requests, bytes, and a lower bound on the time.

    Each course waits for its chained requests one after another, and puts and
    copies its transcripts ``s3_concurrency`` at a time; ``workers`` courses run
    at once. ``round_trip`` is seconds per S3 request, measured by the caller.
    """
    todo = [r for r in rows if r["outcome"] == "migrate"]
    transcripts = [int(r.get("transcripts") or 0) for r in todo]
    requests = sum(FIXED_REQUESTS + PER_TRANSCRIPT * n for n in transcripts) + (PROBE_REQUESTS if todo else 0)
    per_course = [(CHAINED + PER_TRANSCRIPT * -(-n // s3_concurrency)) * round_trip for n in transcripts]
    return {"requests": requests, "bytes": sum(int(r.get("bytes") or 0) for r in todo),
            "seconds": round(sum(per_course) / workers, 1), "workers": workers, "s3_concurrency": s3_concurrency,
            "round_trip_ms": round(round_trip * 1000, 1)}


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in a batch, with what was done before the stop."""

    def __init__(self, partial):
        super().__init__(partial)
        self.partial = partial


def partial(rows, total):
    counts = {o: sum(1 for r in rows if r["outcome"] == o) for o in ("promoted", "skipped", "failed", "claimed",
                                                                     "conflict", "refused", "in_doubt", "migrate")}
    said = ", ".join(f"{n} {'to migrate' if o == 'migrate' else o}" for o, n in counts.items() if n) or "none finished"
    return f"before the stop: {said}; {total - len(rows)} of {total} courses left undone"


def outcome_row(course_id, outcome, **fields):
    return {"course_id": course_id, "outcome": outcome, **fields}


def finish_row(row, started):
    row["seconds"] = round(time.monotonic() - started, 3)
    return log_row(row)


def log_row(row):
    """Log one course's outcome as the batch's line for it; return the row."""
    level = "warning" if row["outcome"] in ("failed", "conflict", "refused", "in_doubt") else "info"
    if row["outcome"] == "claimed" and row["course_id"] in WAITING:
        level = "debug"  # one line when the wait starts and one when it ends, not one per poll
    logs.event(level, row["course_id"], f"course_{row['outcome']}", row.get("run_id"),
               **{k: row.get(k) for k in ("transcripts", "bytes", "attempts", "seconds", "error")})
    return row
