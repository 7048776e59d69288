"""Reconcile a staged run: contentstore == manifest rows == staged objects, checksums and edits included."""

from dataclasses import asdict, dataclass

from etl.model import manifest
from etl.protocol import state
from etl.source import contentstore
from etl.store import pool, s3
from etl.model.errors import NotStaged, ReconcileError, SourceChanged
from etl.model.layout import Layout, parse_course_id


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


def listed(names, limit=5):
    """Return names for a one-line message: the first few, then how many more."""
    names = sorted(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def staged_run(course, record):
    """Return (run id, epoch) of the course's staged (or promoting) run from its record; refuse when there is none."""
    if not record or record.get("state") not in (state.STAGED, state.PROMOTING):
        current = record.get("state") if record else "never extracted"
        raise NotStaged(f"course {course} has no staged run ({current}); "
                        f"run `python -m etl extract {course}` first")
    if not record.get("staged_epoch"):
        raise NotStaged(f"course {course} was staged by version 0.3.0 or earlier, whose staging runs this version "
                        f"does not promote; run `python -m etl extract {course}` again")
    return record["run_id"], int(record["staged_epoch"])


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
    layout = Layout(cfg, course)
    (df, meta, data), source, staged = pool.together(
        lambda: load_manifest(cfg, course, layout.staging_manifest(epoch)),
        lambda: transcripts_now(cfg, course),
        lambda: list(s3.list_objects(cfg, f"{layout.staging_epoch(epoch)}transcripts/")))
    if meta.get("run_id") != run_id or meta.get("course") != str(course):
        raise ReconcileError(f"course {course}: staging manifest names course {meta.get('course')} "
                             f"run {meta.get('run_id')}, not run {run_id}; roll back and extract again")
    refuse_if_changed(cfg, course, df, run_id, source)
    objects = {o["Key"]: o for o in staged}
    expected = dict(zip(df["staged_key"], zip(df["asset_name"], df["staged_etag"], df["length"])))
    missing = [expected[k][0] for k in expected if k not in objects]
    extra = [k.rsplit("/", 1)[1] for k in objects if k not in expected]
    wrong = [name for k, (name, tag, length) in expected.items()
             if k in objects and (objects[k]["ETag"] != tag or objects[k]["Size"] != length)]
    if missing or extra or wrong:
        parts = [f"missing {listed(missing)}" if missing else "", f"unexpected {listed(extra)}" if extra else "",
                 f"checksum or size differs for {listed(wrong)}" if wrong else ""]
        raise ReconcileError(f"course {course}: staging run {run_id} does not match its manifest "
                             f"({'; '.join(p for p in parts if p)}); roll back and extract again")
    result = ReconcileResult(str(course), run_id, len(source), len(df), len(objects), int(df["length"].sum()),
                             int((df["parse_ok"] == False).sum()))  # noqa: E712 (pandas element-wise)
    return result, df, meta, data


def transcripts_now(cfg, course):
    """Return the course's transcripts in the contentstore now, by asset id."""
    return {a.asset_id: a for a in contentstore.find_transcripts(cfg, course)}


def changes_since(df, source):
    """Return the asset ids (added, removed, changed) between a manifest ``df`` and ``transcripts_now``."""
    return contentstore.changed_assets(manifest.identities(df), {k: a.identity() for k, a in source.items()})


def refuse_if_changed(cfg, course, df, run_id, source=None):
    """Refuse when any transcript was added, deleted or edited since the run's snapshot in ``df``.

    ``source`` is ``transcripts_now``'s answer, when the caller already has it.
    """
    source = transcripts_now(cfg, course) if source is None else source
    added, removed, changed = changes_since(df, source)
    if added or removed or changed:
        names = [n.rsplit("@", 1)[-1].rsplit("/", 1)[-1] for n in added + removed + changed]
        kinds = ", ".join(f"{len(x)} {w}" for x, w in ((added, "added"), (removed, "deleted"),
                                                         (changed, "edited")) if x)
        raise SourceChanged(f"course {course}: transcripts changed in the contentstore since run {run_id} "
                            f"was extracted ({kinds}: {listed(names)}); nothing was published; "
                            f"extract the course again")


def reconcile(cfg, course_id):
    """Check a staged run: contentstore count == manifest rows == staged objects, and their checksums.

    Raise naming any difference, and refuse when the contentstore changed since extract.

    Args:
        course_id: course id, course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN.
    """
    course = parse_course_id(course_id)
    return check(cfg, course, *staged_run(course, state.read(cfg, course)[0]))[0]
