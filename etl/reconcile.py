"""Reconcile a staged run: contentstore == manifest rows == staged objects, checksums and edits included."""

from dataclasses import asdict, dataclass

from etl.model import manifest
from etl.model.errors import ReconcileError, first_few
from etl.model.layout import Layout, parse_course_id
from etl.protocol import state
from etl.source import changes
from etl.store import pool, s3


@dataclass
class ReconcileResult:
    """Counts that agreed, for one staged run."""

    course_id: str
    run_id: str
    contentstore_count: int
    manifest_rows: int
    staged_objects: int
    bytes: int
    parse_problems: int

    def to_dict(self):
        return asdict(self)

    def __str__(self):
        return (f"reconciled {self.course_id} run {self.run_id}: {self.contentstore_count} in the contentstore, "
                f"{self.manifest_rows} in the manifest, {self.staged_objects} staged, checksums match")


def load_manifest(cfg, course, key):
    """Return (DataFrame, metadata, bytes) of a manifest in S3."""
    data, _ = s3.get(cfg, key)
    if data is None:
        raise ReconcileError(f"course {course}: manifest {key} is missing; "
                             f"run `python -m etl rollback {course}` then extract again")
    df, meta = manifest.from_bytes(data, key)
    return df, meta, data


def check(cfg, course, run_id, epoch):
    """Reconcile the staged run of ``epoch``; return (ReconcileResult, manifest DataFrame, metadata, bytes)."""
    layout = Layout.of(cfg, course)
    (df, meta, data), source, staged = pool.together(
        lambda: load_manifest(cfg, course, layout.staging_manifest(epoch)),
        lambda: changes.transcripts_now(cfg, course),
        lambda: list(s3.list_objects(cfg, f"{layout.staging_epoch(epoch)}transcripts/")))
    if meta.get("run_id") != run_id or meta.get("course") != str(course):
        raise ReconcileError(f"course {course}: staging manifest names course {meta.get('course')} "
                             f"run {meta.get('run_id')}, not run {run_id}; roll back and extract again")
    changes.refuse_if_changed(cfg, course, df, run_id, source)
    objects = {o["Key"]: o for o in staged}
    expected = dict(zip(df["staged_key"], zip(df["asset_name"], df["staged_etag"], df["length"])))
    missing = [expected[k][0] for k in expected if k not in objects]
    extra = [k.rsplit("/", 1)[1] for k in objects if k not in expected]
    wrong = [name for k, (name, tag, length) in expected.items()
             if k in objects and (objects[k]["ETag"] != tag or objects[k]["Size"] != length)]
    if missing or extra or wrong:
        parts = [f"missing {first_few(missing)}" if missing else "", f"unexpected {first_few(extra)}" if extra else "",
                 f"checksum or size differs for {first_few(wrong)}" if wrong else ""]
        raise ReconcileError(f"course {course}: staging run {run_id} does not match its manifest "
                             f"({'; '.join(p for p in parts if p)}); roll back and extract again")
    result = ReconcileResult(str(course), run_id, len(source), len(df), len(objects), int(df["length"].sum()),
                             int((df["parse_ok"] == False).sum()))  # noqa: E712 (pandas element-wise)
    return result, df, meta, data


def reconcile(cfg, course_id):
    """Check a staged run: contentstore count == manifest rows == staged objects, and their checksums.

    Raise naming any difference, and refuse when the contentstore changed since extract.

    Args:
        course_id: course id, course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN.
    """
    course = parse_course_id(course_id)
    return check(cfg, course, *state.staged_run(course, state.read(cfg, course)[0]))[0]
