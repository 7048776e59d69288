"""Promote a staged run: server-side copies to the live prefix, then the commit marker, last."""

import time
from dataclasses import asdict, dataclass

from etl import reconcile
from etl._version import __version__
from etl.model import client, logs, manifest
from etl.model.errors import Conflict, describe, first_few
from etl.model.layout import Layout, parse_course_id
from etl.model.progress import LARGE_COURSE, bar
from etl.protocol import claims, state
from etl.protocol.cleanup import remove_tool_objects
from etl.protocol.transaction import Transaction
from etl.source import changes
from etl.store import pool, s3


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


@claims.verb
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
    layout = Layout.of(cfg, course)
    looked = claims.look(cfg, course)
    if looked.seen.committed:
        claims.refuse_promoted(cfg, course, looked.seen)
    run_id, staged_epoch = state.staged_run(course, looked.record)
    tx = Transaction.begin(cfg, course, run_id, state.PROMOTING, looked)

    def prepare():
        (_, df, meta, data), listed = pool.together(
            lambda: reconcile.check(cfg, course, run_id, staged_epoch),  # refuses edits since extract, too
            lambda: list(s3.list_objects(cfg, layout.live_root)))
        _clear_live(tx, listed)
        return df, meta, data

    def drop_staging():  # run by the undo only once this run's failure record has landed: the course is its own
        remove_tool_objects(cfg, course, layout.staging_epoch(staged_epoch), epochs=tx.claim.earlier)

    return _publish(tx, staged_epoch, prepare, started, drop=drop_staging)[0]


def promote_staged(cfg, course, staged):
    """Promote the run this runner has just staged and still holds; return (PromoteResult, Published).

    The same publish as ``promote``, in the same transaction as the extract:
    its claim and fence still stand, so there is no second look, claim or
    fence; its own conditional puts are known, so there is no staging listing
    and no manifest download; and its epoch is new, so no live key can be
    taken. The contentstore is still checked after the copies, so an edit since
    the snapshot refuses the commit. An undo deletes the staging run with the
    live copies, since both are the transaction's own writes.
    ``staged`` is what ``extract_course(..., hold=True)`` returned.
    """
    started = time.monotonic()
    tx = staged.tx

    def prepare():
        df, meta = manifest.from_bytes(staged.manifest, tx.layout.staging_manifest(tx.epoch))
        return df, meta, staged.manifest

    def promoting():  # from this move on the record names the staged run: a takeover may roll it forward
        tx.publish([k for k in tx.written if k.startswith(tx.layout.staging_root)],
                   lambda: tx.claim.move(state.PROMOTING, **staged.fields))

    return _publish(tx, tx.epoch, prepare, started, alongside=promoting)


@dataclass(frozen=True)
class Published:
    """What a promote wrote last and knows first-hand: the commit and the live manifest."""

    marker: dict
    marker_etag: str
    manifest: bytes


def _clear_live(tx, listed):
    """Remove earlier epochs' uncommitted live objects; refuse objects the tool did not write under the live prefix."""
    layout = tx.layout
    listed = [o for o in listed if o["Key"] != layout.legacy_marker]  # extract's to clear, with the leftovers
    removed, conflicts = remove_tool_objects(tx.cfg, tx.course, layout.live_root, listed=listed,
                                             epochs=tx.claim.earlier)
    if removed:
        tx.claim.note("leftovers_removed", live=len(removed))
    if conflicts:
        raise Conflict(f"course {tx.course}: objects the tool did not write are under {layout.live_root} "
                       f"({first_few([k[len(layout.live_root):] for k in conflicts])}); nothing was "
                       "published; move them away, then promote again")


def _publish(tx, staged_epoch, prepare, started, drop=None, alongside=None):
    """Copy a claimed run live under the transaction's epoch, check the source again, and commit.

    ``prepare()`` returns the run's manifest (DataFrame, metadata, bytes);
    ``drop()`` deletes a staging run outside the transaction on failure;
    ``alongside()``, when given, runs while the copies are made (a record's
    move). Return (PromoteResult, Published).
    """
    cfg, course, layout, epoch = tx.cfg, tx.course, tx.layout, tx.epoch
    with tx.running(drop=drop):
        df, meta, data = prepare()
        live_keys = [layout.live_key(epoch, name) for name in df["asset_name"]]
        if list(df["live_key"]) != live_keys:  # rolled forward from an earlier epoch's staging
            data = manifest.relocate(data, live_keys)
            df = df.assign(live_key=live_keys)
        copies = list(zip(df["staged_key"], live_keys))
        pool.together(lambda: _copy_all(tx, copies),
                      lambda: tx.put(layout.live_manifest(epoch), data, content_type=manifest.CONTENT_TYPE),
                      *([alongside] if alongside else []))
        changes.refuse_if_changed(cfg, course, df, tx.run_id)  # again: Studio stays open while we copy
        doc, tag = tx.commit({
            "course_id": str(course), "run_id": tx.run_id, "epoch": epoch,
            "transcripts_prefix": layout.live_transcripts(epoch), "transcripts": len(df),
            "bytes": int(df["length"].sum()), "manifest_key": layout.live_manifest(epoch),
            "manifest_sha256": manifest.checksum(data), "source_fingerprint": meta.get("source_fingerprint"),
            "extracted_at": meta.get("created_at"), "committed_at": state.iso(state.now()),
            "tool_version": __version__,
        })
    _finish(tx, df, staged_epoch)
    result = PromoteResult(str(course), tx.run_id, len(df), int(df["length"].sum()), len(copies), 0,
                           layout.marker, round(time.monotonic() - started, 3))
    return result, Published(doc, tag, data)


def _copy_all(tx, todo):
    """Copy staged objects to their live keys in parallel, registering each before it is sent."""
    def copy_one(pair):
        tx.copy(*pair)
        progress.update(1)

    with bar(tx.cfg, len(todo), f"promote {tx.course}", min_total=LARGE_COURSE) as progress:
        pool.run_all(tx.cfg, copy_one, todo)
    tx.claim.check()


def _finish(tx, df, staged_epoch):
    """After the marker: record promoted and delete the staging run, together. The course is committed either way."""
    cfg, course, claim, layout = tx.cfg, tx.course, tx.claim, tx.layout

    def record():
        try:
            claim.move(state.PROMOTED, transcripts=len(df), bytes=int(df["length"].sum()), marker_key=layout.marker)
        except Exception as err:
            claim.stop()
            logs.event("warning", course, "status_lag", tx.run_id, error=describe(err),
                       note="the marker is written; status catches up on the next run")

    def clean():
        try:
            # The staging run is the claim's own epoch, or an earlier one this claim rolled forward.
            with client.unguarded():
                s3.delete_many(cfg, list(df["staged_key"]) + [layout.staging_manifest(staged_epoch)])
        except Exception as err:
            logs.event("warning", course, "staging_cleanup_failed", tx.run_id, error=describe(err),
                       note="the course is promoted; the leftover staging run is harmless")

    pool.together(record, clean)
