"""The command line: ``python -m etl VERB [COURSE] [--flags]``, a thin python-fire layer over the verbs.

Exit codes: 0 done; 1 failed unexpectedly (a bug: re-run with --debug); 2 usage or
configuration error; 3 refused to protect data, nothing changed; 4 the course
failed and was rolled back; 5 verify found the course not ready; 130 interrupted.
"""

import functools
import os
import inspect
import json
import sys

import fire

from . import logs, memory
from ._version import __version__
from .config import config_from_env, redact_uri
from .errors import BatchFailed, EtlError, NotVerified, UsageError

# Settings every command takes: (flag, default, help). The environment fills what a flag leaves unset.
SETTINGS = [
    ("bucket", None, "S3 bucket (ETL_BUCKET)."),
    ("s3_endpoint_url", None, "S3 endpoint for MinIO, Ceph or a test server; unset for AWS (ETL_S3_ENDPOINT_URL)."),
    ("mongo_uri", None, "MongoDB URI of the contentstore (ETL_MONGO_URI); its password is never printed."),
    ("mongo_db", None, "contentstore database (ETL_MONGO_DB, default edxapp)."),
    ("staging_prefix", None, "key prefix of staging runs (ETL_STAGING_PREFIX, default staging)."),
    ("live_prefix", None, "key prefix that Phase II reads (ETL_LIVE_PREFIX, default video-transcripts)."),
    ("state_prefix", None, "key prefix of the status table (ETL_STATE_PREFIX, default _etl)."),
    ("manifest_dir", "manifests", "folder for local manifest copies; '' keeps none."),
    ("concurrency", 16, "parallel S3 requests."),
    ("quiet", False, "log only warnings and errors, and show no progress bar."),
    ("log_format", "text", "log lines as text (key=value) or json."),
]
_ENV_BACKED = {"bucket", "s3_endpoint_url", "mongo_uri", "mongo_db", "staging_prefix", "live_prefix", "state_prefix"}


def _emit(result, fmt, text):
    if fmt == "json":
        print(json.dumps(result.to_dict(), indent=1, default=str))
    else:
        print(text)


def _print_frame(df, fmt, empty):
    """Print a DataFrame as csv, json, or a table (``empty`` when it has no rows)."""
    if fmt == "csv":
        print(df.to_csv(index=False), end="")
    elif fmt == "json":
        print(df.to_json(orient="records", indent=1))
    elif df.empty:
        print(empty)
    else:
        print(df.fillna("").to_string(index=False))


def _command(fn):
    """Give a verb the shared settings as flags; the verb receives a Config as its first argument."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
               for name, default, _ in SETTINGS]
    doc = inspect.getdoc(fn) + "\n" + "".join(f"    {name}: {text}\n" for name, _, text in SETTINGS)

    @functools.wraps(fn)
    def run(self, *args, **kwargs):
        settings = {name: kwargs.pop(name, default) for name, default, _ in SETTINGS}
        logs.setup(settings["log_format"], settings["quiet"])
        return fn(self._config(settings), *args, **kwargs)

    run.__signature__ = inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)] + params)
    run.__doc__ = doc
    return run


class Commands:
    """Migrate Open edX video transcripts from the MongoDB contentstore to S3, one course per transaction.

    Run as `python -m etl COMMAND --help` for a command's flags. Settings come from flags, or else from
    ETL_MONGO_URI, ETL_MONGO_DB (default edxapp), ETL_BUCKET, ETL_S3_ENDPOINT_URL, ETL_STAGING_PREFIX,
    ETL_LIVE_PREFIX and ETL_STATE_PREFIX; AWS credentials come from boto3's usual chain. Add --debug to
    any command for a traceback on error. Exit codes: 0 done, 1 unexpected error, 2 usage error,
    3 refused (nothing changed), 4 course failed and rolled back (migrate: any course failed),
    5 not verified, 130 interrupted.
    """

    def __init__(self, inject=None):
        self._inject = dict(inject or {})  # settings a caller of main() passes in, such as a contentstore

    def _config(self, settings):
        flags = {k: v for k, v in settings.items() if k in _ENV_BACKED}
        inject = dict(self._inject)
        contentstore = inject.pop("contentstore", None)
        cfg = config_from_env(flags, manifest_dir=settings["manifest_dir"] or None,
                              s3_concurrency=int(settings["concurrency"]),
                              progress=False if settings["quiet"] else None, **inject)
        if contentstore is not None:
            cfg.contentstore = contentstore
        return cfg

    @_command
    def extract(cfg, course, format="text"):
        """Snapshot a course's transcripts into a new staging run with a Parquet manifest.

        Args:
            course: course id, course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN.
            format: text or json.
        """
        from .extract import extract

        r = extract(cfg, str(course))
        _emit(r, format, f"staged {r.course_id} run {r.run_id}: {r.transcripts} transcripts, {r.bytes} bytes, "
                         f"{r.parse_problems} parse problems; manifest s3://{cfg.bucket}/{r.manifest_key}"
                         + (f" (local copy {r.local_manifest})" if r.local_manifest else ""))

    @_command
    def reconcile(cfg, course, format="text"):
        """Check a staged run: contentstore count == manifest rows == staged objects, and their checksums.

        Args:
            course: course id.
            format: text or json.
        """
        from .reconcile import reconcile

        r = reconcile(cfg, str(course))
        _emit(r, format, f"reconciled {r.course_id} run {r.run_id}: {r.contentstore_count} in the contentstore, "
                         f"{r.manifest_rows} in the manifest, {r.staged_objects} staged, checksums match")

    @_command
    def promote(cfg, course, format="text"):
        """Publish a course's staged run to the live prefix and write its commit marker last.

        Args:
            course: course id.
            format: text or json.
        """
        from .promote import promote

        r = promote(cfg, str(course))
        _emit(r, format, f"promoted {r.course_id} run {r.run_id}: {r.transcripts} transcripts, {r.bytes} bytes "
                         f"live; marker s3://{cfg.bucket}/{r.marker_key}")

    @_command
    def verify(cfg, course, format="text"):
        """Check a promoted course against its marker, manifest and the contentstore; exit 0 only if all agree.

        Args:
            course: course id.
            format: text or json.
        """
        from .verify import verify

        r = verify(cfg, str(course))
        _emit(r, format, f"{'ok' if r.ok else 'NOT READY'} {r.course_id}: contentstore {r.contentstore_count}, "
                         f"live {r.live_count}, marker {r.marker_count}"
                         + "".join(f"\n  - {p}" for p in r.problems))
        if not r.ok:
            raise NotVerified(f"course {r.course_id} is not ready for Phase II: {r.problems[0]}")

    @_command
    def rollback(cfg, course, force=False, format="text"):
        """Remove a course's transcripts from S3: its staging runs, and live objects the tool wrote.

        Args:
            course: course id.
            force: also roll back a promoted course; its commit marker goes first.
            format: text or json.
        """
        from .rollback import rollback

        r = rollback(cfg, str(course), force=force)
        _emit(r, format, f"rolled back {r.course_id}: {r.deleted} objects deleted"
                         + (", including the commit marker" if r.was_promoted else "")
                         + (f"; kept {len(r.kept_foreign)} objects the tool did not write" if r.kept_foreign else ""))

    @_command
    def status(cfg, course=None, format="table"):
        """Show the migration status table, one row per course.

        Args:
            course: only this course.
            format: table, csv or json.
        """
        from .state import table

        _print_frame(table(cfg, None if course is None else str(course)), format,
                     "no courses in the status table yet")

    @_command
    def migrate(cfg, *course, courses=None, all=False, workers=4, retries=1, dry_run=False, modulestore_db=None,
                format="text"):
        """Migrate many courses, one transaction each; re-run the same command to resume after any stop.

        Args:
            course: course ids.
            courses: a file of course ids, one per line; '#' starts a comment.
            all: every course in the modulestore, plus every course with transcripts in the contentstore.
            workers: courses migrated in parallel.
            retries: further attempts for a course that fails.
            dry_run: read the contentstore and S3, write nothing, and print the plan.
            modulestore_db: database of the modulestore collections, when not the contentstore's.
            format: text, json or csv.
        """
        from .discover import read_course_file
        from .migrate import migrate

        chosen = [str(c) for c in course] + (read_course_file(courses) if courses else [])
        if all and chosen:
            raise UsageError("give course ids or --courses, or --all, not both")
        summary = migrate(cfg, "all" if all else chosen, workers=int(workers), dry_run=bool(dry_run),
                          retries=int(retries), modulestore_db=modulestore_db)
        if format == "json":
            print(json.dumps(summary.to_dict(), indent=1, default=str))
        elif format == "csv":
            print(summary.courses.to_csv(index=False), end="")
        else:
            print(summary.text())
        if not summary.ok:
            raise BatchFailed(f"{summary.count('failed')} of {len(summary.courses)} courses failed; "
                              "fix the causes above, then re-run the same command to resume")

    @_command
    def report(cfg, ready_only=False, modulestore_db=None, workers=8, format="table"):
        """Show Phase II readiness for every course: contentstore, live and marker counts, state, ready.

        Args:
            ready_only: print only the ids of ready courses, one per line, for the feature-flag tooling.
            modulestore_db: database of the modulestore collections, when not the contentstore's.
            workers: courses checked in parallel.
            format: table, csv or json.
        """
        from .migrate import report

        df = report(cfg, "all", modulestore_db=modulestore_db, workers=int(workers))
        if ready_only:
            for course_id in df.loc[df["ready"], "course_id"]:
                print(course_id)
        else:
            _print_frame(df, format, "no courses found")

    @_command
    def diff(cfg, *target, all=False, format="table", output=None, modulestore_db=None, workers=4):
        """Compare a course's contentstore, manifest and S3 objects (diff COURSE), or two manifests (diff A B).

        Marks: = identical, + only in b, - missing from b, * differs, ! unreadable or error. Side a is the
        contentstore (or the older manifest), side b is S3 (or the newer manifest).

        Args:
            target: COURSE, or two manifests A B, each a local path or s3://bucket/key, older first.
            all: write a report for every course plus an index page: the Phase II sign-off pack.
            format: table (a terminal summary), csv, json, markdown or html.
            output: the file to write ('-' for standard output), or with --all the folder; default under manifests/reports/.
            modulestore_db: database of the modulestore collections, when not the contentstore's.
            workers: courses compared in parallel, with --all.
        """
        from . import reports
        from .diff import diff
        from .signoff import diff_all
        from .layout import new_run_id

        reports_dir = os.path.join(cfg.manifest_dir or "manifests", "reports")
        if all:
            if target:
                raise UsageError("give a course, or two manifests, or --all, not both")
            fmt = "html" if format == "table" else format
            folder = output or os.path.join(reports_dir, "signoff-" + new_run_id().split("-")[0])
            summary = diff_all(cfg, folder, fmt, modulestore_db=modulestore_db, workers=int(workers))
            print(f"wrote {len(summary)} course reports and {folder}/index.{reports.EXTENSIONS[fmt]}: "
                  f"{int(summary['ready'].sum())} of {len(summary)} courses ready")
            return
        if len(target) not in (1, 2):
            raise UsageError("give one course id, or two manifests (older first), or --all")
        df = diff(cfg, *[str(t) for t in target])
        content = reports.render(df, format)
        if output == "-" or (output is None and format == "table"):
            print(content, end="" if content.endswith("\n") else "\n")
            return
        name = reports.file_name(str(df.attrs.get("course_id") or target[0]))
        path = output or os.path.join(reports_dir, f"diff-{name}.{reports.EXTENSIONS.get(format, 'txt')}")
        reports.write(path, content)
        print(f"wrote {path}: {df.attrs['verdict']}")

    def demo(self):
        """Run the whole migration on a built-in sample course against a local S3 endpoint; touches nothing real."""
        from .demo import run

        logs.setup()
        run()

    def version(self):
        """Print the tool's version."""
        print(__version__)


def main(argv=None, **inject):
    """Run the CLI; ``inject`` passes settings such as ``contentstore=Database`` straight to the Config."""
    argv = list(sys.argv[1:] if argv is None else argv)
    memory.tune()
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        fire.Fire(Commands(inject), command=argv, name="etl")
    except fire.core.FireExit as exc:
        if exc.code:
            raise SystemExit(exc.code) from None
    except EtlError as exc:
        if debug:
            raise
        print(f"etl: error: {redact_uri(exc)}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        if debug:
            raise
        print("etl: interrupted; the course was rolled back where possible, see `python -m etl status`",
              file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as exc:
        if debug:
            raise
        first = redact_uri((str(exc).splitlines() or [""])[0][:300])
        print(f"etl: internal error: {type(exc).__name__}: {first}; re-run with --debug for the traceback",
              file=sys.stderr)
        raise SystemExit(1) from None
