"""The command line: ``python -m etl VERB COURSE [--flags]``, a thin python-fire layer over the verbs.

Exit codes: 0 done; 1 failed unexpectedly (a bug: re-run with --debug); 2 usage or
configuration error; 3 refused to protect data, nothing changed; 4 the course
failed and was rolled back; 5 verify found the course not ready; 130 interrupted.
"""

import json
import logging
import sys
import time

import fire

from . import __version__
from .config import config_from_env
from .errors import EtlError, NotVerified

log = logging.getLogger("etl")


class _UtcFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record, datefmt=None):  # noqa: N802 (logging's name)
        return time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created)) + f".{int(record.msecs):03d}Z"


def _setup_logging(quiet):
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def _emit(result, fmt, text):
    if fmt == "json":
        print(json.dumps(result.to_dict(), indent=1, default=str))
    else:
        print(text)


class Cli:
    """Migrate Open edX video transcripts from the MongoDB contentstore to S3, one course per transaction.

    Settings come from flags, or else from ETL_MONGO_URI, ETL_MONGO_DB (default edxapp), ETL_BUCKET,
    ETL_S3_ENDPOINT_URL, ETL_STAGING_PREFIX, ETL_LIVE_PREFIX and ETL_STATE_PREFIX. AWS credentials come
    from boto3's usual chain. Add --debug to any command for a traceback on error.
    """

    _inject = {}  # settings a caller of main() passes in directly, such as a contentstore Database

    def __init__(self, bucket=None, s3_endpoint_url=None, mongo_uri=None, mongo_db=None, staging_prefix=None,
                 live_prefix=None, state_prefix=None, manifest_dir="manifests", concurrency=16, quiet=False):
        self._flags = dict(bucket=bucket, s3_endpoint_url=s3_endpoint_url, mongo_uri=mongo_uri, mongo_db=mongo_db,
                           staging_prefix=staging_prefix, live_prefix=live_prefix, state_prefix=state_prefix)
        self._settings = dict(manifest_dir=manifest_dir or None, s3_concurrency=concurrency,
                              progress=False if quiet else None)
        self._cfg = None
        _setup_logging(quiet)

    def _config(self):
        if self._cfg is None:
            inject = dict(self._inject)
            contentstore = inject.pop("contentstore", None)
            self._cfg = config_from_env(self._flags, **{**self._settings, **inject})
            if contentstore is not None:
                self._cfg.contentstore = contentstore
        return self._cfg

    def extract(self, course, format="text"):
        """Snapshot a course's transcripts into a new staging run with a Parquet manifest.

        Args:
            course: course id, course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN.
            format: text or json.
        """
        from .extract import extract

        r = extract(self._config(), str(course))
        _emit(r, format, f"staged {r.course_id} run {r.run_id}: {r.transcripts} transcripts, {r.bytes} bytes, "
                         f"{r.parse_problems} parse problems; manifest s3://{self._cfg.bucket}/{r.manifest_key}"
                         + (f" (local copy {r.local_manifest})" if r.local_manifest else ""))

    def reconcile(self, course, format="text"):
        """Check a course's staged run: contentstore count == manifest rows == staged objects, checksums too.

        Args:
            course: course id.
            format: text or json.
        """
        from .reconcile import reconcile

        r = reconcile(self._config(), str(course))
        _emit(r, format, f"reconciled {r.course_id} run {r.run_id}: {r.contentstore_count} in the contentstore, "
                         f"{r.manifest_rows} in the manifest, {r.staged_objects} staged, checksums match")

    def promote(self, course, format="text"):
        """Publish a course's staged run to the live prefix and write its commit marker last.

        Args:
            course: course id.
            format: text or json.
        """
        from .promote import promote

        r = promote(self._config(), str(course))
        _emit(r, format, f"promoted {r.course_id} run {r.run_id}: {r.transcripts} transcripts, {r.bytes} bytes "
                         f"live; marker s3://{self._cfg.bucket}/{r.marker_key}")

    def verify(self, course, format="text"):
        """Check a promoted course against its marker, manifest and the contentstore; exit 0 only if all agree.

        Args:
            course: course id.
            format: text or json.
        """
        from .verify import verify

        r = verify(self._config(), str(course))
        _emit(r, format, f"{'ok' if r.ok else 'NOT READY'} {r.course_id}: contentstore {r.contentstore_count}, "
                         f"live {r.live_count}, marker {r.marker_count}"
                         + "".join(f"\n  - {p}" for p in r.problems))
        if not r.ok:
            raise NotVerified(f"course {r.course_id} is not ready for Phase II: {r.problems[0]}")

    def rollback(self, course, force=False, format="text"):
        """Remove a course's transcripts from S3 (staging, and live objects the tool wrote).

        Args:
            course: course id.
            force: also roll back a promoted course, marker first.
            format: text or json.
        """
        from .rollback import rollback

        r = rollback(self._config(), str(course), force=force)
        _emit(r, format, f"rolled back {r.course_id}: {r.deleted} objects deleted"
                         + (", including the commit marker" if r.was_promoted else "")
                         + (f"; kept {len(r.kept_foreign)} objects the tool did not write" if r.kept_foreign else ""))

    def status(self, course=None, format="table"):
        """Show the migration status table, one row per course.

        Args:
            course: only this course.
            format: table, csv or json.
        """
        from .status import table

        df = table(self._config(), None if course is None else str(course))
        if format == "csv":
            print(df.to_csv(index=False), end="")
        elif format == "json":
            print(df.to_json(orient="records", indent=1))
        elif df.empty:
            print("no courses in the status table yet")
        else:
            print(df.fillna("").to_string(index=False))

    def demo(self):
        """Run the whole migration on a built-in sample course, with a local S3 endpoint; touches nothing real."""
        from .demo import run

        run()

    def version(self):
        """Print the tool's version."""
        print(__version__)


def main(argv=None, **inject):
    """Run the CLI; ``inject`` passes settings such as ``contentstore=Database`` straight to the Config."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    component = type("Cli", (Cli,), {"_inject": inject, "__doc__": Cli.__doc__})
    try:
        fire.Fire(component, command=argv, name="python -m etl")
    except fire.core.FireExit as exc:
        if exc.code:
            raise SystemExit(exc.code) from None
    except EtlError as exc:
        if debug:
            raise
        print(f"etl: error: {exc}", file=sys.stderr)
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
        first = (str(exc).splitlines() or [""])[0][:300]
        print(f"etl: internal error: {type(exc).__name__}: {first}; re-run with --debug for the traceback",
              file=sys.stderr)
        raise SystemExit(1) from None
