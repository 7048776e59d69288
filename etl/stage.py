"""Stage transcripts: read checked bytes from the contentstore and put them into a staging run.

Small transcripts go up in parallel from one bounded pool, with a byte budget so
memory stays bounded however fast the contentstore reads; large ones stream
chunk by chunk into a multipart upload. Every key is registered with the
course's transaction before its request is sent, so a failure, even one whose
answer was lost, can delete exactly those; every key is in the run's own epoch.
"""

import base64
import hashlib
import threading
from concurrent.futures import wait

from etl.model import client, logs, manifest
from etl.model.layout import Layout
from etl.model.progress import LARGE_COURSE, bar
from etl.source import contentstore, transcripts
from etl.store import pool, s3


class _ByteBudget:
    """Block the reader while too many bytes wait for upload."""

    def __init__(self, limit):
        self.limit, self.used = limit, 0
        self.cond = threading.Condition()

    def take(self, n):
        with self.cond:
            while self.used and self.used + n > self.limit:
                self.cond.wait()
            self.used += n

    def give(self, n):
        with self.cond:
            self.used -= n
            self.cond.notify_all()


def _row(course_id, asset, staged_key, live_key, md5, etag, ok, error, sha256=None):
    return manifest.Row(
        course_id=course_id, asset_id=asset.asset_id, asset_name=asset.name,
        language=transcripts.language(asset.name), format=transcripts.transcript_format(asset.name),
        content_type=asset.content_type, length=asset.length, md5=md5,
        source_md5=asset.stored_md5, upload_date=asset.upload_date,
        staged_key=staged_key, staged_etag=etag, live_key=live_key,
        parse_ok=ok, parse_error=error, sha256=sha256,
    )


def stage(cfg, course, tx, assets):
    """Put ``assets`` into the staging run of transaction ``tx``; return their manifest rows in name order.

    The transaction's claim is checked between batches, so a run that lost its
    course stops early.
    """
    epoch = tx.epoch
    layout, course_id = Layout.of(cfg, course), str(course)  # one course id string, shared by every row
    keys = {a.name: layout.asset_keys(epoch, a.name) for a in assets}  # refuse bad names before any write
    rows, lock = {}, threading.Lock()
    budget = _ByteBudget(4 * cfg.read_batch_bytes)
    small = [a for a in assets if a.length <= cfg.multipart_bytes]
    large = [a for a in assets if a.length > cfg.multipart_bytes]

    def put_one(asset, data, md5, ok, error):
        try:
            staged, live = keys[asset.name]
            digest = hashlib.sha256(data)
            tag = tx.put(staged, data, md5=md5, content_type=asset.content_type,
                         checksum_sha256=base64.b64encode(digest.digest()).decode())
            with lock:
                rows[asset.name] = _row(course_id, asset, staged, live, md5, tag, ok, error, digest.hexdigest())
        finally:
            budget.give(len(data))
        progress.update(1)

    failures = []  # the first upload error stops the reading at once, without scanning every future

    def note_failure(future):
        if not future.cancelled() and future.exception() is not None:
            failures.append(future.exception())

    with bar(cfg, len(assets), f"stage {course}", min_total=LARGE_COURSE) as progress:
        futures, keep = [], 1024
        try:
            for asset, data, md5 in contentstore.read_small(cfg, course, small):
                ok, error = transcripts.check(asset.name, data)
                budget.take(len(data))
                future = pool.submit(cfg, put_one, asset, data, md5, ok, error)
                future.add_done_callback(note_failure)
                futures.append(future)
                if len(futures) >= keep:  # hold only puts in flight: a done one's error is in ``failures``
                    futures = [f for f in futures if not f.done()]
                    keep = max(1024, 2 * len(futures))
                if failures:
                    raise failures[0]
                tx.claim.check()
            for asset in large:
                rows[asset.name] = _stage_large(cfg, course, tx, asset, keys[asset.name])
                progress.update(1)
            for f in futures:
                f.result()
            if failures:
                raise failures[0]
        except BaseException:
            for f in futures:
                f.cancel()
            wait(futures)  # puts already in flight finish, so the transaction's keys are complete
            raise
    return [rows[a.name] for a in assets]


def _stage_large(cfg, course, tx, asset, keys):
    """Stream one large transcript into a multipart upload, whose abort the transaction runs on any failure."""
    staged, live = keys
    tx.wrote(staged)  # before anything is sent: a completion whose answer is lost may still have landed
    upload = s3.MultipartUpload(cfg, staged, content_type=asset.content_type,
                                metadata=s3.tool_metadata(course, tx.run_id, asset.stored_md5))
    tx.add_failure_cleanup(_abort, course, tx.run_id, upload)
    buf = bytearray()

    def sink(data):
        buf.extend(data)
        while len(buf) >= cfg.multipart_bytes:
            upload.add(bytes(buf[:cfg.multipart_bytes]))
            del buf[:cfg.multipart_bytes]

    md5 = contentstore.read_stream(cfg, course, asset, sink)
    if buf or not upload.parts:
        upload.add(bytes(buf))
    tag = upload.complete()
    error = f"not parsed: larger than {cfg.multipart_bytes} bytes"
    return _row(str(course), asset, staged, live, md5, tag, None, error)


def _abort(course, run_id, upload):
    try:
        with client.unguarded():  # the upload is this run's own: abort it whatever the lease
            upload.abort()
    except Exception as err:  # the failure that undid the transaction is what the operator must see
        logs.event("warning", course, "abort_failed", run_id, key=upload.key, error=str(err),
                   note="S3 keeps the parts until the bucket's lifecycle rule aborts incomplete uploads")
