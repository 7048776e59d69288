"""The commands: each a plain function whose signature is its command line and whose docstring is its help.

Each command takes the Config first. Parameters before ``*`` are arguments,
keyword-only ones are ``--flags`` (``dry_run`` is ``--dry-run``), a ``bool``
default makes a switch, an ``int`` default a whole number, and a ``Literal``
annotation a list of choices. Every command returns what it did, and every
result knows its text (``str``), its JSON (``to_dict``) and its exit code;
``etl.cli.main`` prints it.
"""

import inspect
import json
import os
import typing
from dataclasses import dataclass

import pandas as pd

from etl._version import __version__
from etl.batch.migrate import migrate as migrate_courses
from etl.extract import extract
from etl.handoff import COLUMNS as HANDOFF_COLUMNS
from etl.handoff import handoff as hand_off
from etl.handoff import summary as handoff_summary
from etl.model.errors import NotCommitted, UsageError
from etl.model.layout import new_run_id, parse_course_id
from etl.promote import promote
from etl.protocol.known import table_ids
from etl.reconcile import reconcile
from etl.review import reports
from etl.review.diff import diff as course_diff
from etl.review.report import notes, report as readiness
from etl.review.signoff import diff_all
from etl.review.views import check_state, history, status
from etl.rollback import rollback
from etl.source.discover import read_course_file
from etl.vacuum import vacuum as vacuum_course
from etl.verify import verify


TEXT = ("text", "json")


TABLE = ("table", "csv", "json")


@dataclass(frozen=True)
class Setting:
    """A flag every command takes."""

    name: str
    default: typing.Any
    help: str
    choices: tuple = ()


SETTINGS = [
    Setting("bucket", None, "S3 bucket (ETL_BUCKET)."),
    Setting("s3_endpoint_url", None, "S3 endpoint for MinIO, Ceph or a test server; unset for AWS (ETL_S3_ENDPOINT_URL)."),
    Setting("mongo_uri", None, "MongoDB URI of the contentstore (ETL_MONGO_URI); its password is never printed."),
    Setting("mongo_db", None, "contentstore database (ETL_MONGO_DB, default edxapp)."),
    Setting("modulestore_db", None, "database of the modulestore collections, when not the contentstore's."),
    Setting("staging_prefix", None, "key prefix of staging runs (ETL_STAGING_PREFIX, default staging)."),
    Setting("live_prefix", None, "key prefix that Phase II reads (ETL_LIVE_PREFIX, default video-transcripts)."),
    Setting("state_prefix", None, "key prefix of the status table (ETL_STATE_PREFIX, default _etl)."),
    Setting("manifest_dir", None, "folder for local manifest copies and reports (ETL_MANIFEST_DIR, default "
            "manifests); '' keeps no local copies."),
    Setting("s3_concurrency", 16, "parallel S3 requests."),
    Setting("max_reads_per_second", 0, "cap on contentstore queries per second across the process; 0 for none."),
    Setting("quiet", False, "log only warnings and errors, and show no progress bar."),
    Setting("log_format", "text", "log lines as text (key=value) or json.", ("text", "json")),
    Setting("debug", False, "log every step of every course, and on an error print the traceback too."),
]


ENV_BACKED = {"bucket", "s3_endpoint_url", "mongo_uri", "mongo_db", "staging_prefix", "live_prefix", "state_prefix"}


@dataclass
class Command:
    """One command: its function, what it needs checked first, and its parameters."""

    name: str
    fn: typing.Callable
    writes: bool
    contentstore: bool
    s3: bool
    check: typing.Optional[typing.Callable] = None  # check(args, flags): rules between arguments
    formats: tuple = ()  # for a verb that prints a result: the --format choices, the first the default
    empty: str = ""  # what a table says when it has no rows

    @property
    def params(self):
        return list(inspect.signature(self.fn).parameters.values())[1:]

    @property
    def arguments(self):
        return [p for p in self.params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]

    @property
    def flags(self):
        own = {p.name: (p.default, _choices(p)) for p in self.params if p.kind == p.KEYWORD_ONLY}
        if self.formats:
            own["format"] = (self.formats[0], self.formats)
        return {**own, **{s.name: (s.default, s.choices) for s in SETTINGS}}


COMMANDS = {}


def command(writes=False, contentstore=True, s3=True, check=None, formats=(), empty=""):
    """Register a verb as a command; say what the preflight must check before it runs."""
    def register(fn):
        COMMANDS[fn.__name__] = Command(fn.__name__, fn, writes, contentstore, s3, check, formats, empty)
        return fn
    return register


def _one_of_courses(args, flags):
    if flags.get("no_wait") and flags.get("engine", "threads") != "celery":
        raise UsageError("migrate: --no-wait goes with --engine celery: the thread pool works in this process")
    if flags.get("all") and (args or flags.get("courses")):
        raise UsageError("migrate: --all is every course: give it alone, without course ids or --courses")
    if not flags.get("all") and not args and not flags.get("courses"):
        raise UsageError("migrate: no courses given; name course ids, or use --courses FILE or --all")


def _courses_or_all(name, file=False):
    def check(args, flags):
        listed = args or flags.get("courses")
        if flags.get("all") and listed:
            raise UsageError(f"{name}: --all is every course in the status table: give it alone, without course ids"
                             + (" or --courses" if file else ""))
        if not flags.get("all") and not listed:
            raise UsageError(f"{name}: no courses given; name course ids, or use {'--courses FILE or ' if file else ''}"
                             "--all")
    return check


def _diff_targets(args, flags):
    if flags.get("all") and args:
        raise UsageError("diff: give a course, or two manifests, or --all, not both")
    if not flags.get("all") and len(args) not in (1, 2):
        raise UsageError("diff: give one course id, or two manifests (older first), or --all")


def _choices(param):
    return typing.get_args(param.annotation) if typing.get_origin(param.annotation) is typing.Literal else ()


def dashed(name):
    return "--" + name.replace("_", "-")


class Frame:
    """A DataFrame result: printed as a table, csv or json, with a line for when it is empty.

    The table view cuts a cell longer than ``CELL`` characters (an error, an
    event's details), so one long cell does not pad every row; the columns in
    ``WHOLE`` stay whole, since a cut next step is no step at all. CSV and JSON
    are never cut.
    """

    CELL, WHOLE = 120, ("next_step",)

    def __init__(self, df, empty, exit_code=0, failure=None, note=None):
        self.df, self.empty, self.exit_code, self.failure, self.note = df, empty, exit_code, failure, note

    def render(self, fmt):
        if fmt == "csv":
            return self.df.to_csv(index=False).rstrip("\n")
        if fmt == "json":
            df = self.df.astype(object).where(self.df.notna(), None)
            return json.dumps(df.to_dict("records"), indent=1, default=str)
        if self.df.empty:
            return self.df.attrs.get("empty") or self.empty
        df = self.df.astype(object).where(self.df.notna(), "")
        for column in df.columns:
            if column not in self.WHOLE:
                df[column] = [_cut(value, self.CELL) for value in df[column]]
        table = df.to_string(index=False)
        return f"{table}\n{self.note}" if self.note else table


def _cut(value, limit):
    text = str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass
class Said:
    """A result whose data goes to standard output and whose notes go to standard error, as aws and rclone split them."""

    data: str
    notes: list


# The commands: the verbs themselves where their signature is the command line, else a thin function.
# Each returns what it did; main prints it.

command(writes=True, formats=TEXT)(extract)
command(formats=TEXT)(reconcile)
command(writes=True, formats=TEXT)(promote)
command(formats=TEXT)(verify)
command(writes=True, contentstore=False, formats=TEXT)(rollback)  # its purge_versions is --purge-versions
command(contentstore=False, formats=TABLE, empty="no courses in the status table yet",
        check=lambda args, flags: check_state(flags.get("state", "")))(status)
command(contentstore=False, formats=TABLE, empty="no events for this course yet")(history)


@command(writes=True, check=_one_of_courses)
def migrate(cfg, *course, courses="", all=False, workers=4, retries=1, dry_run=False, vacuum=False,
            engine: typing.Literal["threads", "celery"] = "threads", no_wait=False,
            format: typing.Literal["text", "json", "csv"] = "text"):
    """Migrate many courses, one transaction each; re-run the same command to resume after any stop.

    Args:
        course: course ids.
        courses: a file of course ids, one per line; '#' starts a comment.
        all: every course in the modulestore, plus every course with transcripts in the contentstore.
        workers: courses migrated in parallel.
        retries: further attempts for a course that fails for a reason a retry can fix.
        dry_run: read the contentstore and S3, write nothing, and print the plan.
        vacuum: after each course, delete its dead epochs' objects older than 7 days (see vacuum).
        engine: threads (courses run in this process) or celery (one task per course, on the workers).
        no_wait: with --engine celery, return once the courses are queued.
        format: text, json or csv.
    """
    chosen = list(course) + (read_course_file(courses) if courses else [])
    if not all and not chosen:
        raise UsageError(f"no course ids in {courses}; add one per line")
    summary = migrate_courses(cfg, "all" if all else chosen, workers=workers, dry_run=dry_run, retries=retries,
                      engine=engine, wait=not no_wait, vacuum=vacuum)
    return Frame(summary.courses, "", summary.exit_code, summary.failure) if format == "csv" else summary


@command(writes=True, contentstore=False, check=_courses_or_all("vacuum"), formats=TABLE, empty="no courses to vacuum")
def vacuum(cfg, *course, all=False, retain_days=7, dry_run=False):
    """Delete the objects of dead epochs older than the retention period: never a commit, a staged run or a live claim.

    Args:
        course: course ids.
        all: every course in the status table.
        retain_days: keep dead objects younger than this many days; 0 deletes every dead object.
        dry_run: list exactly what would be deleted, and change nothing.
    """
    ids = list(course) if not all else sorted(table_ids(cfg))  # one listing, not a read of every record
    rows = []
    for course_id in ids:
        result = vacuum_course(cfg, course_id, retain_days=retain_days, dry_run=dry_run)
        rows.append({"course_id": result.course_id, "deleted": len(result.would_delete) if dry_run else result.deleted,
                     "epochs": " ".join(f"e{e}" for e in result.epochs),
                     "kept": " ".join(f"e{e}:{why}" for e, why in sorted(result.kept.items())),
                     "dry_run": dry_run})
    return pd.DataFrame(rows, columns=["course_id", "deleted", "epochs", "kept", "dry_run"])


@command(writes=True, check=_courses_or_all("handoff", file=True))
def handoff(cfg, *course, courses="", all=False, english_from_transcripts=False, as_parsed=False, output=""):
    """Show which transcripts of committed courses the LMS serves, from which live object, and write each hand-off.

    Args:
        course: course ids.
        courses: a file of course ids, one per line; '#' starts a comment.
        all: every course in the status table that is committed.
        english_from_transcripts: serve English from the file transcripts['en'] names, which the LMS never reads.
        as_parsed: take a file whose bytes parse as the other format (SRT, SJSON) in that format.
        output: also write every row to this file: .json for JSON, anything else CSV; '-' for standard output.
    """
    ids = list(course) + (read_course_file(courses) if courses else []) if not all else sorted(table_ids(cfg))
    frames, lines = [], []
    for course_id in ids:
        try:
            df = hand_off(cfg, course_id, english_from_transcripts=english_from_transcripts, as_parsed=as_parsed)
        except NotCommitted:
            if not all:
                raise
            lines.append(f"{course_id}: not committed; skipped")
            continue
        frames.append(df)
        lines.append(handoff_summary(df))
    if output:
        rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=HANDOFF_COLUMNS)
        content = rows.to_json(orient="records", indent=1) if output.endswith(".json") else rows.to_csv(index=False)
        if output == "-":  # the rows are the data: the summary goes to standard error
            return Said(content.rstrip("\n"), lines)
        reports.write(output, content)
        lines.append(f"wrote {output}: {len(rows)} rows")
    return "\n".join(lines) or "no courses to hand off"


@command(formats=TABLE, empty="no courses found")
def report(cfg, *, ready_only=False, workers=8):
    """Show Phase II readiness for every course: counts, state, ready, and for each course not ready, why and what next.

    Args:
        ready_only: print only the ids of ready courses, one per line, for the feature-flag tooling.
        workers: courses checked in parallel.
    """
    df = readiness(cfg, "all", workers=workers)
    if ready_only:
        return "\n".join(df.loc[df["ready"], "course_id"]) or None
    return Frame(df, "no courses found", note=notes(cfg, df))


@command(check=_diff_targets)
def diff(cfg, *target, all=False, output="", workers=4,
         format: typing.Literal["table", "csv", "json", "markdown", "html"] = "table"):
    """Compare a course's contentstore, manifest and S3 objects (diff COURSE), or two manifests (diff A B).
    Side a is the contentstore (or the older manifest), side b is S3 (or the newer manifest). Marks:
    = identical, + only in b, - missing from b, * differs, ! unreadable or error.

    Args:
        target: COURSE, or two manifests A B, each a local path or s3://bucket/key, older first.
        all: write a report for every course plus an index page: the Phase II sign-off pack.
        output: the file to write ('-' for standard output), or with --all the folder; default under manifests/reports/.
        workers: courses compared in parallel, with --all.
        format: table (a terminal summary), csv, json, markdown or html.
    """
    reports_dir = os.path.join(cfg.manifest_dir or "manifests", "reports")
    if all:
        fmt = "html" if format == "table" else format
        folder = output or os.path.join(reports_dir, "signoff-" + new_run_id().split("-")[0])
        summary = diff_all(cfg, folder, fmt, workers=workers)
        written = int(summary["report"].notna().sum())
        unresolved = len(summary) - written
        return (f"wrote {written} course report{'' if written == 1 else 's'} and {folder}/index."
                f"{reports.EXTENSIONS[fmt]}: {int(summary['ready'].sum())} of {written} courses ready"
                + (f"; the index also lists {unresolved} unresolved group{'' if unresolved == 1 else 's'} of "
                   "transcripts no course claims" if unresolved else ""))
    df = course_diff(cfg, *target)
    content = reports.render(df, format)
    if output == "-" or (not output and format == "table"):
        return content.rstrip("\n")
    name = reports.file_name(str(df.attrs.get("course_id") or target[0]))
    path = output or os.path.join(reports_dir, f"diff-{name}.{reports.EXTENSIONS.get(format, 'txt')}")
    reports.write(path, content)
    return f"wrote {path}: {df.attrs['verdict']}"


@command(writes=True)
def worker(cfg, *, concurrency=2, queues=""):
    """Start a Celery worker for course tasks, configured from this process's environment (ETL_BROKER_URL).

    Args:
        concurrency: worker processes, each migrating one course at a time.
        queues: the queues to consume, comma-separated (default ETL_CELERY_QUEUE, or transcript-etl).
    """
    from etl.batch import tasks  # Celery is the [celery] extra: imported only by the commands that use it

    tasks.check_broker()
    tasks.configure(cfg)
    queues = queues or tasks.app.conf.task_default_queue
    tasks.app.worker_main(["worker", f"--concurrency={concurrency}", f"--queues={queues}", "--pool=prefork",
                           "--prefetch-multiplier=1", "--loglevel=INFO"])


@command(contentstore=False, formats=TABLE, empty="no course ids given")
def tasks(cfg, *course, courses=""):
    """Show each course's Celery task from the result backend: queued, started, waiting, or done, and what a worker refused and why.

    Args:
        course: course ids, as given to migrate --engine celery --no-wait.
        courses: a file of course ids, one per line; '#' starts a comment.
    """
    from etl.batch import tasks as celery_tasks  # Celery is the [celery] extra

    chosen = list(course) + (read_course_file(courses) if courses else [])
    if not chosen:
        raise UsageError("tasks: no courses given; name course ids, or use --courses FILE")
    rows = celery_tasks.task_rows(cfg, [str(parse_course_id(c)) for c in chosen])
    df = pd.DataFrame(rows, columns=["course_id", "task", "outcome", "error"])
    bad = int(df["outcome"].isin(["refused", "failed"]).sum())
    return Frame(df, "", 4 if bad else 0, f"{bad} of {len(df)} courses were refused or failed on the workers; "
                 "see why above" if bad else None)


@command(contentstore=False, s3=False)
def demo(cfg):
    """Run the whole migration on a built-in sample course against a local S3 endpoint; touches nothing real."""
    from etl.demo.run import run  # moto and mongomock are the [demo] extra

    run()


@command(contentstore=False, s3=False)
def version(cfg):
    """Print the tool's version."""
    return __version__
