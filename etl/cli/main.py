"""The command line, ``python -m etl COMMAND [ARGS] [--flags]``: check it, configure, preflight, run, print.

``main`` checks the whole command line against the command's signature
(``etl.cli.front``) before anything is read or written, builds the Config,
runs the store and contentstore preflight, hands the checked tokens to
python-fire to call the command (``etl.cli.commands``), and prints what the
command returns in the format asked for, with its exit code.
"""

import inspect
import json
import os
import sys
import traceback

import fire
import fire.decorators
import pandas as pd

from etl.cli import memory
from etl.cli.commands import ENV_BACKED, Frame, Said
from etl.cli.front import HelpWanted, help_text, parse
from etl.cli.paths import check_local_paths
from etl.model import logs, redact
from etl.model.config import config_from_env
from etl.model.errors import EtlError
from etl.store.preflight import preflight


def _run(parsed, cfg):
    """Call the command through python-fire, which binds the operator's own tokens to its signature; return its result.

    Every token has been checked already (``front.parse``). Fire reads each value
    as the string it is, or as a whole number where the default is one, rather
    than guessing a Python literal; the call returns nothing to fire, so fire
    prints nothing.
    """
    cmd, box = parsed.cmd, {}

    def call(*args, **flags):
        box["result"] = cmd.fn(cfg, *args, **flags)

    call.__signature__ = inspect.Signature(cmd.params)
    numbers = [p.name for p in cmd.params if isinstance(p.default, int) and not isinstance(p.default, bool)]
    fire.decorators.SetParseFn(str)(call)
    if numbers:
        fire.decorators.SetParseFn(int, *numbers)(call)
    fire.Fire(call, command=parsed.tokens(), name=f"etl {cmd.name}")
    return box.get("result")


def emit(cmd, result, fmt, log_format="text"):
    """Print a command's result in ``fmt``; return its exit code."""
    if result is None:
        return 0
    if isinstance(result, pd.DataFrame):
        result = Frame(result, cmd.empty)
    if isinstance(result, Said):
        for line in result.notes:
            print(logs.note_line(line, log_format), file=sys.stderr)
        print(result.data)
    elif isinstance(result, Frame):
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


def _needs_contentstore(parsed):
    """Tell whether the command will read the contentstore: ``diff A B`` of two manifests does not."""
    if parsed.cmd.name == "diff":
        return len(parsed.args) == 1 or bool(parsed.values.get("all"))
    return parsed.cmd.contentstore


def _config(settings, inject, contentstore_needed=True):
    inject = dict(inject)
    contentstore = inject.pop("contentstore", None)
    flags = {k: v for k, v in settings.items() if k in ENV_BACKED}
    environ = None
    if not contentstore_needed:  # connect only when the command reads the database: no wait for nothing
        flags["mongo_uri"] = None
        environ = {k: v for k, v in os.environ.items() if k != "ETL_MONGO_URI"}
    cfg = config_from_env(flags, environ, manifest_dir=settings["manifest_dir"], s3_concurrency=settings["s3_concurrency"],
                          progress=False if settings["quiet"] else None,
                          modulestore_db=settings["modulestore_db"],
                          max_reads_per_second=settings["max_reads_per_second"], **inject)
    if contentstore is not None:  # a caller's own Database (the tests, an embedding program)
        cfg.contentstore = contentstore.client[settings["mongo_db"]] if settings["mongo_db"] else contentstore
    return cfg


def run(argv, inject):
    """Check, configure, preflight, run and print one command; return its exit code."""
    parsed = parse(argv)
    cmd, values, settings = parsed.cmd, parsed.values, parsed.settings
    logs.setup(settings["log_format"], settings["quiet"], settings["debug"])
    check_local_paths(cmd, values, settings)  # before any request: a path found unwritable mid-course fails it
    needed = _needs_contentstore(parsed)
    if cmd.s3 or needed:
        cfg = _config(settings, inject, needed)
        preflight(cfg, write=cmd.writes and not values.get("dry_run", False), contentstore=needed)
    else:
        cfg = None
    with logs.around_progress():
        result = _run(parsed, cfg)
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
    plan = batch and "--dry-run" in argv
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
        except KeyboardInterrupt as stop:
            if debug:
                print(redact.scrub(traceback.format_exc()), file=sys.stderr, end="")
            partial = f"{stop.partial}; " if getattr(stop, "partial", None) else ""
            print(logs.final_line(
                "the queued courses carry on in the Celery workers; re-run the same command to "
                "attach to them or resume them (see `python -m etl report` or `status`)" if celery and not plan else
                f"the plan was stopped before it finished; nothing was written; {partial}re-run it for the whole "
                "plan" if plan else
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
