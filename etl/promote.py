"""Promote a staged run: server-side copies to the live prefix, then the commit marker, last."""

import time
from dataclasses import asdict, dataclass

from . import logs, manifest, marker, reconcile, s3, state
from ._version import __version__
from .cleanup import discard, remove_tool_objects
from .errors import ConcurrentRun, Conflict
from .layout import Layout, parse_course_id
from .progress import LARGE_COURSE, bar


@dataclass
class PromoteResult:
    """What one promote published."""

    course_id: str
    run_id: str
    transcripts: int
    bytes: int
    copied: int
    resumed: int
    marker_key: str
    seconds: float

    def to_dict(self):
        return asdict(self)

    def __str__(self):
        return (f"promoted {self.course_id} run {self.run_id}: {self.transcripts} transcripts, {self.bytes} bytes "
                f"live; commit marker {self.marker_key}")


@state.verb
def promote(cfg, course_id):
    """Publish a course's staged run to the live prefix, then write its commit marker.

    In order: reconcile, which refuses if the contentstore changed since extract;
    copy staging to live server-side, the manifest with the transcripts; check
    the contentstore again; commit by replacing this run's fence with the marker
    (If-Match on the fence's ETag); delete the staging run. Refuse when the
    course is committed. A re-run after a crash finishes its own run's copies; an
    object the tool did not write at a live key is a conflict. Any failure before
    the marker deletes this run's live and staged objects and records the course as failed.

    Args:
        course_id: course id, course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN.
    """
    started = time.monotonic()
    course = parse_course_id(course_id)
    cfg.require_contentstore()
    layout = Layout(cfg, course)
    looked = state.look(cfg, course)
    if looked.seen.committed:
        state.refuse_promoted(cfg, course, looked.seen.doc)
    run_id = reconcile.staged_run(course, looked.record)
    claim = state.claim(cfg, course, run_id, state.PROMOTING, looked)

    def prepare():
        (_, df, meta, data), existing = s3.together(
            lambda: reconcile.check(cfg, course, run_id),  # refuses edits since extract, too
            lambda: list(s3.list_objects(cfg, layout.live_transcripts)))
        return df, meta, data, existing

    return _publish(cfg, course, claim, prepare, lambda: remove_tool_objects(cfg, course, layout.staging_run(run_id)),
                    started)[0]


def promote_staged(cfg, course, staged):
    """Promote the run this runner has just staged and still holds; return (PromoteResult, Published).

    The same publish as ``promote``, without reading back what this runner
    wrote itself: the extract's claim and fence still stand, so there is no
    second look, claim or fence; its own conditional puts are known, so there is
    no staging listing and no manifest download. The contentstore is still
    checked after the copies, so an edit since the snapshot refuses the commit.
    ``staged`` is what ``extract_course(..., hold=True)`` returned.
    """
    started = time.monotonic()
    claim, layout = staged.claim, Layout(cfg, course)

    def prepare():
        df, meta = manifest.from_bytes(staged.manifest, layout.staging_manifest(claim.run_id))
        return df, meta, staged.manifest, staged.live

    return _publish(cfg, course, claim, prepare, lambda: discard(cfg, staged.written), started,
                    alongside=lambda: claim.move(state.PROMOTING, **staged.fields))


@dataclass(frozen=True)
class Published:
    """What a promote wrote last and knows first-hand: the commit and the live manifest, and the source it checked."""

    marker: dict
    marker_etag: str
    manifest: bytes
    source: dict  # the contentstore's transcripts, read just before the commit (``reconcile.transcripts_now``)


def _publish(cfg, course, claim, prepare, drop_staging, started, alongside=None):
    """Copy a claimed run live, check the source again, and commit; return (PromoteResult, Published).

    ``prepare()`` returns the run's manifest (DataFrame, metadata, bytes) and the
    live transcripts listed; ``drop_staging()`` deletes the staging run on failure;
    ``alongside()``, when given, runs while the copies are made (a record's move).
    """
    layout, run_id = Layout(cfg, course), claim.run_id
    ours, marker_written = [], False
    try:
        df, meta, data, existing = prepare()
        todo, resumed = _plan(cfg, course, run_id, df, existing, ours)
        copies = todo + [(layout.staging_manifest(run_id), layout.live_manifest)]
        s3.together(lambda: _copy_all(cfg, course, copies, ours, claim), *([alongside] if alongside else []))
        source = reconcile.transcripts_now(cfg, course)
        reconcile.refuse_if_changed(cfg, course, df, run_id, source)  # again: Studio stays open while we copy
        claim.check()
        doc = {
            "course_id": str(course), "run_id": run_id, "transcripts": len(df),
            "bytes": int(df["length"].sum()), "manifest_key": layout.live_manifest,
            "manifest_sha256": manifest.checksum(data), "source_fingerprint": meta.get("source_fingerprint"),
            "extracted_at": meta.get("created_at"), "committed_at": state.iso(state.now()),
            "tool_version": __version__,
        }
        try:
            doc, tag = marker.commit(cfg, course, run_id, claim.token, doc)
        except ConcurrentRun as lost:
            # Another runner claimed the course while this one was paused: what is in S3 is its now.
            claim.lost = lost
            claim.release()
            raise
        marker_written = True
    except BaseException as exc:
        if not marker_written:
            _undo(cfg, course, claim, drop_staging, ours, exc)
        raise
    _finish(cfg, course, claim, layout, df, run_id)
    result = PromoteResult(str(course), run_id, len(df), int(df["length"].sum()), len(todo), resumed,
                           layout.marker, round(time.monotonic() - started, 3))
    return result, Published(doc, tag, data, source)


def _plan(cfg, course, run_id, df, existing, ours):
    """Return the copies still to make, and how many a crashed earlier attempt already made.

    ``existing`` lists the live transcripts. A live object this run wrote with the
    right checksum is kept; one the tool wrote in another, uncommitted run is
    replaced; anything else is a conflict.
    """
    existing = {o["Key"]: o for o in existing}
    wanted = dict(zip(df["live_key"], zip(df["staged_key"], df["md5"])))
    conflicts, todo, resumed = [], [], 0
    for key, obj in existing.items():
        head = s3.head(cfg, key)
        if head is None:
            continue
        if not s3.written_by_tool(head, course):
            conflicts.append(key.rsplit("/", 1)[1])
        elif key not in wanted:
            try:  # an uncommitted leftover of this tool, not in this run
                s3.delete_if_match(cfg, key, s3.etag(head["ETag"]))
            except s3.PreconditionFailed:
                conflicts.append(key.rsplit("/", 1)[1])
        elif head["Metadata"].get(s3.META_RUN) == run_id and obj["ETag"] == wanted[key][1]:
            ours.append(key)
            resumed += 1
    if conflicts:
        raise Conflict(f"course {course}: live keys hold objects the tool did not write "
                       f"({reconcile.listed(conflicts)}); nothing was published; move them away, then promote again")
    done = set(ours)
    todo = [(staged, live) for live, (staged, _) in wanted.items() if live not in done]
    return todo, resumed


def _copy_all(cfg, course, todo, ours, claim):
    """Copy staged objects to their live keys in parallel, registering each as it lands."""
    def copy_one(pair):
        staged, live = pair
        s3.copy(cfg, staged, live)
        ours.append(live)  # list.append is atomic under the GIL
        progress.update(1)

    with bar(cfg, len(todo), f"promote {course}", min_total=LARGE_COURSE) as progress:
        s3.run_all(cfg, copy_one, todo)
    claim.check()


def _undo(cfg, course, claim, drop_staging, ours, exc):
    """Delete this run's live copies and its staging run, then record the failure."""
    if not claim.lost:
        try:
            discard(cfg, ours)
            drop_staging()
        except Exception as err:
            logs.event("error", course, "cleanup_failed", claim.run_id, error=state.describe(err),
                       next=f"python -m etl rollback {course}")
    state.record_failure(claim, exc)


def _finish(cfg, course, claim, layout, df, run_id):
    """After the marker: record promoted and delete the staging run, together. The course is committed either way."""
    def record():
        try:
            claim.move(state.PROMOTED, transcripts=len(df), bytes=int(df["length"].sum()), marker_key=layout.marker)
        except Exception as err:
            claim.release()
            logs.event("warning", course, "status_lag", run_id, error=state.describe(err),
                       note="the marker is written; status catches up on the next run")

    def clean():
        try:
            discard(cfg, list(df["staged_key"]) + [layout.staging_manifest(run_id)])
        except Exception as err:
            logs.event("warning", course, "staging_cleanup_failed", run_id, error=state.describe(err),
                       note="the course is promoted; the leftover staging run is harmless")

    s3.together(record, clean)
