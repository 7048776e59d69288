"""The command line, ``python -m etl COMMAND [ARGS] [--flags]``, generated from the command functions below.

Each command is a plain function that takes the Config first. Its signature is
its command line: parameters before ``*`` are arguments, keyword-only ones are
``--flags`` (``dry_run`` is ``--dry-run``), a ``bool`` default makes a switch, an
``int`` default a whole number, and a ``Literal`` annotation a list of choices.
Its docstring is its help. ``main`` checks the whole command line against the
signature before anything is read or written, hands the checked call to
python-fire, and prints what the command returns: every result knows its text
(``str``), its JSON (``to_dict``) and its exit code.
"""

import difflib
import inspect
import json
import os
import sys
import traceback
import typing
from dataclasses import dataclass

import fire
import pandas as pd

from etl.cli import memory
from etl.model import logs, redact
from etl._version import __version__
from etl.model.config import config_from_env
from etl.model.errors import EXIT_CODES, EtlError, UsageError
from etl.extract import extract
from etl.promote import promote
from etl.reconcile import reconcile
from etl.rollback import rollback
from etl.protocol.state import history, status
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
    Setting("manifest_dir", "manifests", "folder for local manifest copies and reports; '' keeps none."),
    Setting("s3_concurrency", 16, "parallel S3 requests."),
    Setting("max_reads_per_second", 0, "cap on contentstore queries per second across the process; 0 for none."),
    Setting("quiet", False, "log only warnings and errors, and show no progress bar."),
    Setting("log_format", "text", "log lines as text (key=value) or json.", ("text", "json")),
    Setting("debug", False, "log every step of every course, and on an error print the traceback too."),
]
_ENV_BACKED = {"bucket", "s3_endpoint_url", "mongo_uri", "mongo_db", "staging_prefix", "live_prefix", "state_prefix"}
MINIMUM = {"s3_concurrency": 1, "concurrency": 1, "workers": 1, "retries": 0, "retain_days": 0}
SHORT = {"-o": "output", "-h": "help"}
LOCAL_SETTINGS = ("quiet", "log_format", "debug")  # all a command that touches neither S3 nor MongoDB uses


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


def _courses_or_all(args, flags):
    if flags.get("all") and args:
        raise UsageError("vacuum: --all is every course in the status table: give it alone, without course ids")
    if not flags.get("all") and not args:
        raise UsageError("vacuum: no courses given; name course ids, or use --all")


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
    """A DataFrame result: printed as a table, csv or json, with a line for when it is empty."""

    def __init__(self, df, empty, exit_code=0, failure=None):
        self.df, self.empty, self.exit_code, self.failure = df, empty, exit_code, failure

    def render(self, fmt):
        df = self.df.astype(object).where(self.df.notna(), None)
        if fmt == "csv":
            return self.df.to_csv(index=False).rstrip("\n")
        if fmt == "json":
            return json.dumps(df.to_dict("records"), indent=1, default=str)
        if self.df.empty:
            return self.empty
        return df.fillna("").to_string(index=False, max_colwidth=80)  # a terminal's width; csv and json keep all


# The commands: the verbs themselves where their signature is the command line, else a thin function.
# Each returns what it did; main prints it.

command(writes=True, formats=TEXT)(extract)
command(formats=TEXT)(reconcile)
command(writes=True, formats=TEXT)(promote)
command(formats=TEXT)(verify)
command(writes=True, contentstore=False, formats=TEXT)(rollback)  # its purge_versions is --purge-versions
command(contentstore=False, formats=TABLE, empty="no courses in the status table yet")(status)
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
    from etl.source.discover import read_course_file
    from etl.batch.migrate import migrate

    chosen = list(course) + (read_course_file(courses) if courses else [])
    if not all and not chosen:
        raise UsageError(f"no course ids in {courses}; add one per line")
    summary = migrate(cfg, "all" if all else chosen, workers=workers, dry_run=dry_run, retries=retries,
                      engine=engine, wait=not no_wait, vacuum=vacuum)
    return Frame(summary.courses, "", summary.exit_code, summary.failure) if format == "csv" else summary


@command(writes=True, contentstore=False, check=_courses_or_all, formats=TABLE, empty="no courses to vacuum")
def vacuum(cfg, *course, all=False, retain_days=7, dry_run=False):
    """Delete the objects of dead epochs older than the retention period: never a commit, a staged run or a live claim.

    Args:
        course: course ids.
        all: every course in the status table.
        retain_days: keep dead objects younger than this many days; 0 deletes every dead object.
        dry_run: list exactly what would be deleted, and change nothing.
    """
    from etl.protocol.known import table_ids
    from etl.vacuum import vacuum

    ids = list(course) if not all else sorted(table_ids(cfg))  # one listing, not a read of every record
    rows = []
    for course_id in ids:
        result = vacuum(cfg, course_id, retain_days=retain_days, dry_run=dry_run)
        rows.append({"course_id": result.course_id, "deleted": len(result.would_delete) if dry_run else result.deleted,
                     "epochs": " ".join(f"e{e}" for e in result.epochs),
                     "kept": " ".join(f"e{e}:{why}" for e, why in sorted(result.kept.items())),
                     "dry_run": dry_run})
    return pd.DataFrame(rows, columns=["course_id", "deleted", "epochs", "kept", "dry_run"])


@command(formats=TABLE, empty="no courses found")
def report(cfg, *, ready_only=False, workers=8):
    """Show Phase II readiness for every course: counts, state, ready, and for each course not ready, why and what next.

    Args:
        ready_only: print only the ids of ready courses, one per line, for the feature-flag tooling.
        workers: courses checked in parallel.
    """
    from etl.review.report import report

    df = report(cfg, "all", workers=workers)
    if ready_only:
        return "\n".join(df.loc[df["ready"], "course_id"]) or None
    return df


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
    from etl.review import reports
    from etl.review.diff import diff
    from etl.model.layout import new_run_id
    from etl.review.signoff import diff_all

    reports_dir = os.path.join(cfg.manifest_dir or "manifests", "reports")
    if all:
        fmt = "html" if format == "table" else format
        folder = output or os.path.join(reports_dir, "signoff-" + new_run_id().split("-")[0])
        summary = diff_all(cfg, folder, fmt, workers=workers)
        return (f"wrote {len(summary)} course reports and {folder}/index.{reports.EXTENSIONS[fmt]}: "
                f"{int(summary['ready'].sum())} of {len(summary)} courses ready")
    df = diff(cfg, *target)
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
    from etl.batch import tasks

    tasks.check_broker()
    tasks.configure(cfg)
    queues = queues or tasks.app.conf.task_default_queue
    tasks.app.worker_main(["worker", f"--concurrency={concurrency}", f"--queues={queues}", "--pool=prefork",
                           "--prefetch-multiplier=1", "--loglevel=INFO"])


@command(contentstore=False, s3=False)
def demo(cfg):
    """Run the whole migration on a built-in sample course against a local S3 endpoint; touches nothing real."""
    from etl.demo.run import run

    run()


@command(contentstore=False, s3=False)
def version(cfg):
    """Print the tool's version."""
    return __version__


# The front door.

def parse(argv):
    """Check a command line against its command's signature; return (command, args, flags, settings).

    Raise UsageError naming the first problem: an unknown command or flag (with
    the closest valid one), a missing or extra argument, a flag without its value,
    a value of the wrong type or outside its choices.
    """
    if not argv or argv[0] in ("-h", "--help", "help"):
        raise HelpWanted(None)
    name, tokens = argv[0], argv[1:]
    if name not in COMMANDS:
        raise UsageError(f"unknown command {name!r}{_closest(name, COMMANDS)}; run `python -m etl --help` for the list")
    cmd = COMMANDS[name]
    flags, args, values, i = cmd.flags, [], {}, 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token in ("-h", "--help"):
            raise HelpWanted(cmd)
        if token == "--":
            args.extend(tokens[i:])
            break
        if not token.startswith("-") or token == "-" or token[1:2].isdigit():
            args.append(token)
            continue
        flag, has_value, value = token.partition("=")
        key = SHORT.get(flag) if not flag.startswith("--") else flag[2:].replace("-", "_")
        if key not in flags:
            known = [dashed(f) for f in flags]
            raise UsageError(f"{name}: unknown flag {flag}{_closest(flag, known)}; "
                             f"run `python -m etl {name} --help` for its flags")
        default, choices = flags[key]
        if key in values:
            raise UsageError(f"{name}: {dashed(key)} is given twice")
        if isinstance(default, bool):
            if has_value:
                raise UsageError(f"{name}: {dashed(key)} is a switch and takes no value (got {value!r})")
            values[key] = True
            continue
        if not has_value:
            if i >= len(tokens) or (tokens[i].startswith("--") and len(tokens[i]) > 2):
                raise UsageError(f"{name}: {dashed(key)} needs a value")
            value = tokens[i]
            i += 1
        values[key] = _typed(name, key, value, default, choices)
    _check_arguments(cmd, args)
    if cmd.check:
        cmd.check(args, values)
    settings = {s.name: values.pop(s.name, s.default) for s in SETTINGS}
    return cmd, args, values, settings


class HelpWanted(Exception):
    """The operator asked for help (``cmd`` None: the list of commands)."""

    def __init__(self, cmd):
        super().__init__(cmd)
        self.cmd = cmd


def _closest(word, candidates):
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def _typed(name, key, value, default, choices):
    if isinstance(default, int):
        try:
            number = int(value)
        except ValueError:
            raise UsageError(f"{name}: {dashed(key)} takes a whole number, not {value!r}") from None
        if number < MINIMUM.get(key, 0):
            raise UsageError(f"{name}: {dashed(key)} must be at least {MINIMUM.get(key, 0)}, not {number}")
        return number
    if choices and value not in choices:
        raise UsageError(f"{name}: {dashed(key)} is one of {', '.join(choices)}, not {value!r}")
    return value


def _check_arguments(cmd, args):
    fixed = [p for p in cmd.arguments if p.kind == p.POSITIONAL_OR_KEYWORD]
    required = [p for p in fixed if p.default is p.empty]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in cmd.arguments)
    if len(args) < len(required):
        raise UsageError(f"{cmd.name}: missing {_word(required[len(args)])}; "
                         f"usage: {usage(cmd)}")
    if not varargs and len(args) > len(fixed):
        raise UsageError(f"{cmd.name}: unexpected argument {args[len(fixed)]!r}; usage: {usage(cmd)}")


def _word(param):
    """Return how a positional parameter reads on the command line: course_id is COURSE."""
    return param.name.upper().removesuffix("_ID")


def usage(cmd):
    """Return a command's one-line usage."""
    parts = [f"python -m etl {cmd.name}"]
    for p in cmd.arguments:
        word = _word(p)
        parts.append(f"[{word}...]" if p.kind == p.VAR_POSITIONAL else word if p.default is p.empty else f"[{word}]")
    for key, (default, choices) in cmd.flags.items():
        if key in {s.name for s in SETTINGS}:
            continue
        parts.append(f"[{dashed(key)}]" if isinstance(default, bool)
                     else f"[{dashed(key)} {'|'.join(choices) if choices else key.upper()}]")
    return " ".join(parts) + " [settings]"


def _doc_sections(fn):
    """Return (summary paragraphs, {parameter: help}) from a docstring."""
    doc = inspect.getdoc(fn) or ""
    text, _, args = doc.partition("Args:")
    helps = {}
    for line in args.splitlines():
        name, sep, rest = line.strip().partition(": ")
        if sep and name.isidentifier():
            helps[name] = rest
    return text.strip(), helps


def _with_default(text, default):
    """Append a flag's default to its help, unless the help says it already or there is none to say."""
    if isinstance(default, bool) or default in (None, "", inspect.Parameter.empty) or "default" in text:
        return text
    return f"{text.rstrip('.')} (default {default})."


WIDTH = 24  # the widest flag, --max-reads-per-second, and a space


def help_text(cmd=None):
    """Return the help of one command, or of the tool: generated from the signatures and docstrings."""
    relevant = [s for s in SETTINGS if cmd is None or cmd.s3 or cmd.contentstore or s.name in LOCAL_SETTINGS]
    settings = "\n".join(f"  {dashed(s.name):<{WIDTH}} {_with_default(s.help, s.default)}" for s in relevant)
    codes = "\n".join(f"  {code:<4} {what}" for code, what in EXIT_CODES.items())
    if cmd is None:
        lines = [f"etl {__version__}: move Open edX video transcripts from the contentstore to S3, "
                 "one course per transaction.", "", "usage: python -m etl COMMAND [ARGS] [--flags]", "", "commands:"]
        lines += [f"  {c.name:<10} {_doc_sections(c.fn)[0].splitlines()[0]}" for c in COMMANDS.values()]
        lines += ["", "settings (every command; a flag wins over the environment; AWS credentials come from "
                  "boto3's usual chain):", settings, "", "exit codes:", codes, "",
                  "Run `python -m etl COMMAND --help` for a command's arguments and flags."]
        return "\n".join(lines)
    summary, helps = _doc_sections(cmd.fn)
    lines = [f"usage: {usage(cmd)}", "", summary.split("\n\n")[0], ""]  # the first paragraph, as alembic does
    own = [(_word(p) if p.kind != p.KEYWORD_ONLY else dashed(p.name),
            _with_default(helps.get(p.name, ""), p.default if p.kind == p.KEYWORD_ONLY else None))
           for p in cmd.params]
    if cmd.formats:
        own.append(("--format", f"{' or '.join(cmd.formats)} (default {cmd.formats[0]})."))
    if own:
        lines.append("arguments and flags:")
        lines += [f"  {label:<{WIDTH}} {text}" for label, text in own]
        lines.append("")
    lines += ["settings:", settings, "", "exit codes:", codes]
    return "\n".join(lines)


def _literal(value):
    """Encode a checked value so python-fire reads back exactly that value and type."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def _run(cmd, cfg, args, values):
    """Call the command through python-fire with the checked arguments; return its result."""
    box = {}
    values = {k: v for k, v in values.items() if not (cmd.formats and k == "format")}

    def call(*a, **k):
        box["result"] = cmd.fn(cfg, *a, **k)

    call.__signature__ = inspect.Signature(cmd.params)
    tokens = [_literal(a) for a in args] + [f"--{k}={_literal(v)}" for k, v in values.items()]
    fire.Fire(call, command=tokens, name=f"etl {cmd.name}")
    return box.get("result")


def emit(cmd, result, fmt, log_format="text"):
    """Print a command's result in ``fmt``; return its exit code."""
    if result is None:
        return 0
    if isinstance(result, pd.DataFrame):
        result = Frame(result, cmd.empty)
    if isinstance(result, Frame):
        print(result.render(fmt))
    elif isinstance(result, str):
        print(result)
    elif fmt == "json":
        print(json.dumps(result.to_dict(), indent=1, default=str))
    else:
        print(result)
    code = getattr(result, "exit_code", 0)
    if code:
        print(logs.final_line(result.failure, code, log_format), file=sys.stderr)
    return code


def _config(settings, inject):
    inject = dict(inject)
    contentstore = inject.pop("contentstore", None)
    flags = {k: v for k, v in settings.items() if k in _ENV_BACKED}
    cfg = config_from_env(flags, manifest_dir=settings["manifest_dir"] or None, s3_concurrency=settings["s3_concurrency"],
                          progress=False if settings["quiet"] else None,
                          modulestore_db=settings["modulestore_db"],
                          max_reads_per_second=settings["max_reads_per_second"], **inject)
    if contentstore is not None:  # a caller's own Database (the tests, an embedding program)
        cfg.contentstore = contentstore.client[settings["mongo_db"]] if settings["mongo_db"] else contentstore
    return cfg


def run(argv, inject):
    """Check, configure, preflight, run and print one command; return its exit code."""
    from etl.store.preflight import preflight

    cmd, args, values, settings = parse(argv)
    logs.setup(settings["log_format"], settings["quiet"], settings["debug"])
    if cmd.s3 or cmd.contentstore:
        cfg = _config(settings, inject)
        preflight(cfg, write=cmd.writes and not values.get("dry_run", False), contentstore=cmd.contentstore)
    else:
        cfg = None
    with logs.around_progress():
        result = _run(cmd, cfg, args, values)
    return emit(cmd, result, values.get("format", cmd.formats[0] if cmd.formats else "text"), settings["log_format"])


def main(argv=None, **inject):
    """Run the CLI; exit with its code unless 0. ``inject`` passes settings such as ``contentstore=Database``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    memory.tune()
    debug = "--debug" in argv
    log_format = logs.format_in(argv)
    if argv in (["--version"], ["-V"]):  # as aws, rclone, celery and alembic accept it
        argv = ["version"]
    batch = bool(argv) and argv[0] == "migrate"
    celery = batch and any(a in ("--engine=celery", "celery") for a in argv)
    try:
        try:
            code = run(argv, inject)
        except HelpWanted as wanted:
            text = help_text(wanted.cmd)
            if wanted.cmd is None and not argv:  # no command at all: a usage error
                print(text, file=sys.stderr)
                raise SystemExit(2) from None
            print(text)
            code = 0
        except EtlError as exc:
            if debug:
                print(redact.scrub(traceback.format_exc()), file=sys.stderr, end="")
            print(logs.final_line(exc, exc.exit_code, log_format), file=sys.stderr)
            code = exc.exit_code
        except fire.core.FireExit as exc:  # cannot happen after parse(); never let it pass silently
            print(f"etl: error: the command line could not be read ({exc.code})", file=sys.stderr)
            code = 2
        except KeyboardInterrupt as stop:
            if debug:
                print(redact.scrub(traceback.format_exc()), file=sys.stderr, end="")
            partial = f"{stop.partial}; " if getattr(stop, "partial", None) else ""
            print(logs.final_line(
                "the queued courses carry on in the Celery workers; re-run the same command to "
                "attach to them or resume them (see `python -m etl report` or `status`)" if celery else
                f"courses already running were finished or rolled back, no new one started; {partial}"
                "re-run the same command to resume (see `python -m etl status`)" if batch else
                "the course was rolled back where possible (see `python -m etl status`)", 130, log_format,
                "interrupted"), file=sys.stderr)
            code = 130
    except BrokenPipeError:  # `| head` closed the pipe: nothing more to say
        _quiet_stdout()
        code = 141
    except Exception as exc:
        if debug:
            print(redact.scrub(traceback.format_exc()), file=sys.stderr, end="")
        first = redact.scrub((str(exc).splitlines() or [""])[0][:300])
        print(logs.final_line(f"{type(exc).__name__}: {first}; re-run with --debug for the traceback", 1,
                              log_format, "internal error"), file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        code = code or 141
    if code:
        raise SystemExit(code)


def _quiet_stdout():
    """Point stdout at /dev/null, so the interpreter's last flush of a closed pipe says nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())

