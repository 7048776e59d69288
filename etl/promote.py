"""Promote a staged run: server-side copies to the live prefix, then the commit marker, last."""

import time
from dataclasses import asdict, dataclass

from etl import reconcile
from etl.model import client, logs, manifest
from etl.protocol import marker, state
from etl.store import pool, s3
from etl._version import __version__
from etl.protocol.cleanup import discard, remove_tool_objects
from etl.model.errors import ConcurrentRun, Conflict
from etl.model.layout import Layout, parse_course_id
from etl.model.progress import LARGE_COURSE, bar


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
    take the course's next epoch; copy staging into that epoch's live prefix
    server-side and put its manifest; check the contentstore again; commit by
    replacing this run's fence with the marker (If-Match on the fence's ETag);
    delete the staging run. Refuse when the course is committed. A run left
    promoting by a runner that stopped is rolled forward the same way, into a
    new epoch; an object the tool did not write under the live prefix is a
    conflict. Any failure before the marker deletes this run's live objects
    and the staging run, and records the course as failed.

    Args:
        course_id: course id, course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN.
    """
    started = time.monotonic()
    course = parse_course_id(course_id)
    cfg.require_contentstore()
    layout = Layout(cfg, course)
    looked = state.look(cfg, course)
    if looked.seen.committed:
        state.refuse_promoted(cfg, course, looked.seen.commit)
    run_id, staged_epoch = reconcile.staged_run(course, looked.record)
    claim = state.claim(cfg, course, run_id, state.PROMOTING, looked)

    def prepare():
        (_, df, meta, data), listed = pool.together(
            lambda: reconcile.check(cfg, course, run_id, staged_epoch),  # refuses edits since extract, too
            lambda: list(s3.list_objects(cfg, layout.live_root)))
        _clear_live(cfg, course, claim, listed)
        return df, meta, data

    def drop_staging():
        if state.read(cfg, course)[1] == claim.etag:  # still this claim's course: nobody rolls the run forward
            remove_tool_objects(cfg, course, layout.staging_epoch(staged_epoch), epochs=claim.earlier)

    return _publish(cfg, course, claim, staged_epoch, prepare, drop_staging, started)[0]


def promote_staged(cfg, course, staged):
    """Promote the run this runner has just staged and still holds; return (PromoteResult, Published).

    The same publish as ``promote``, without reading back what this runner
    wrote itself: the extract's claim and fence still stand, so there is no
    second look, claim or fence; its own conditional puts are known, so there is
    no staging listing and no manifest download; and its epoch is new, so no
    live key can be taken. The contentstore is still checked after the copies,
    so an edit since the snapshot refuses the commit.
    ``staged`` is what ``extract_course(..., hold=True)`` returned.
    """
    started = time.monotonic()
    claim = staged.claim

    def prepare():
        df, meta = manifest.from_bytes(staged.manifest, Layout(cfg, course).staging_manifest(claim.epoch))
        return df, meta, staged.manifest

    return _publish(cfg, course, claim, claim.epoch, prepare,
                    lambda: discard(cfg, course, claim.epoch, staged.written), started,
                    alongside=lambda: claim.move(state.PROMOTING, **staged.fields))


@dataclass(frozen=True)
class Published:
    """What a promote wrote last and knows first-hand: the commit and the live manifest."""

    marker: dict
    marker_etag: str
    manifest: bytes


def _clear_live(cfg, course, claim, listed):
    """Remove earlier epochs' uncommitted live objects; refuse objects the tool did not write under the live prefix."""
    layout = Layout(cfg, course)
    listed = [o for o in listed if o["Key"] != layout.legacy_marker]  # extract's to clear, with the leftovers
    removed, conflicts = remove_tool_objects(cfg, course, layout.live_root, listed=listed, epochs=claim.earlier)
    if removed:
        claim.note("leftovers_removed", live=len(removed))
    if conflicts:
        raise Conflict(f"course {course}: objects the tool did not write are under {layout.live_root} "
                       f"({reconcile.listed([k[len(layout.live_root):] for k in conflicts])}); nothing was "
                       "published; move them away, then promote again")


def _publish(cfg, course, claim, staged_epoch, prepare, drop_staging, started, alongside=None):
    """Copy a claimed run live under the claim's epoch, check the source again, and commit.

    ``prepare()`` returns the run's manifest (DataFrame, metadata, bytes);
    ``drop_staging()`` deletes the staging run on failure; ``alongside()``, when
    given, runs while the copies are made (a record's move). Return
    (PromoteResult, Published).
    """
    layout, run_id, epoch = Layout(cfg, course), claim.run_id, claim.epoch
    ours, marker_written = [], False
    try:
        with claim.guarded():
            df, meta, data = prepare()
            live_keys = [layout.live_key(epoch, name) for name in df["asset_name"]]
            if list(df["live_key"]) != live_keys:  # rolled forward from an earlier epoch's staging
                data = manifest.relocate(data, live_keys)
                df = df.assign(live_key=live_keys)
            copies = list(zip(df["staged_key"], live_keys))
            pool.together(lambda: _copy_all(cfg, course, copies, ours, claim),
                        lambda: _put_manifest(cfg, course, claim, data, ours),
                        *([alongside] if alongside else []))
            reconcile.refuse_if_changed(cfg, course, df, run_id)  # again: Studio stays open while we copy
            claim.check()
            doc = {
                "course_id": str(course), "run_id": run_id, "epoch": epoch,
                "transcripts_prefix": layout.live_transcripts(epoch), "transcripts": len(df),
                "bytes": int(df["length"].sum()), "manifest_key": layout.live_manifest(epoch),
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
        state.reraise(claim, exc)
    _finish(cfg, course, claim, df, staged_epoch)
    result = PromoteResult(str(course), run_id, len(df), int(df["length"].sum()), len(copies), 0,
                           layout.marker, round(time.monotonic() - started, 3))
    return result, Published(doc, tag, data)


def _put_manifest(cfg, course, claim, data, ours):
    key = Layout(cfg, course).live_manifest(claim.epoch)
    ours.append(key)  # before the request: a put whose answer is lost may still have landed
    s3.put(cfg, key, data, metadata=s3.tool_metadata(course, claim.run_id), if_none_match=True,
           content_type="application/vnd.apache.parquet")


def _copy_all(cfg, course, todo, ours, claim):
    """Copy staged objects to their live keys in parallel, registering each before it is sent."""
    def copy_one(pair):
        staged, live = pair
        ours.append(live)  # list.append is atomic under the GIL
        s3.copy(cfg, staged, live)
        progress.update(1)

    with bar(cfg, len(todo), f"promote {course}", min_total=LARGE_COURSE) as progress:
        pool.run_all(cfg, copy_one, todo)
    claim.check()


def _undo(cfg, course, claim, drop_staging, ours, exc):
    """Delete this run's live copies and its staging run, then record the failure."""
    try:
        discard(cfg, course, claim.epoch, ours)  # this epoch's own keys: no other runner can name them
        if not claim.lost:
            drop_staging()
    except Exception as err:
        logs.event("error", course, "cleanup_failed", claim.run_id, error=state.describe(err),
                   next=f"python -m etl rollback {course}")
    state.record_failure(claim, exc)


def _finish(cfg, course, claim, df, staged_epoch):
    """After the marker: record promoted and delete the staging run, together. The course is committed either way."""
    layout, run_id = Layout(cfg, course), claim.run_id

    def record():
        try:
            claim.move(state.PROMOTED, transcripts=len(df), bytes=int(df["length"].sum()), marker_key=layout.marker)
        except Exception as err:
            claim.release()
            logs.event("warning", course, "status_lag", run_id, error=state.describe(err),
                       note="the marker is written; status catches up on the next run")

    def clean():
        try:
            # The staging run is the claim's own epoch, or an earlier one this claim rolled forward.
            with client.unguarded():
                s3.delete_many(cfg, list(df["staged_key"]) + [layout.staging_manifest(staged_epoch)])
        except Exception as err:
            logs.event("warning", course, "staging_cleanup_failed", run_id, error=state.describe(err),
                       note="the course is promoted; the leftover staging run is harmless")

    pool.together(record, clean)
