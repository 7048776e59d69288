"""Run one course as a transaction: claim it, write only under its epoch, then commit, or undo every write.

A verb drives a course through a ``Transaction``::

    tx = Transaction.begin(cfg, course, run_id, EXTRACTING, looked)  # claim, epoch, fence
    with tx.running(drop=...):      # under the lease guard: any error undoes the transaction
        tx.put(key, data)           # each key registered before its request is sent
        tx.commit(doc)              # the commit marker: the one place "committed" is decided

Before the commit, any error (an interrupt included) deletes the transaction's
own writes (keys of its epoch, which no other runner can name), calls ``drop``
for what the caller staged earlier, records the course as failed and removes
the fence; the error raised is that the course was lost, when it was. After
the commit the course is committed whatever happens next.
"""

import threading
from contextlib import contextmanager

from etl.model import logs
from etl.model.errors import ConcurrentRun, describe
from etl.protocol import claims, marker
from etl.protocol.cleanup import discard
from etl.store import s3


class Transaction:
    """One course's transaction: its claim, the keys it has written, and its commit."""

    def __init__(self, claim):
        self.claim = claim
        self.cfg, self.course, self.run_id, self.epoch = claim.cfg, claim.course, claim.run_id, claim.epoch
        self.layout = claim.layout
        self.written = []  # every key a request was sent for, registered before it was sent
        self.commit_doc = self.commit_etag = None
        self._lock = threading.Lock()

    @classmethod
    def begin(cls, cfg, course, run_id, target, looked=None):
        """Claim ``course`` for ``run_id`` (moving it to ``target``) and fence it; return the Transaction."""
        return cls(claims.claim(cfg, course, run_id, target, looked))

    def wrote(self, key):
        """Register a key this transaction is about to write, so an undo deletes it whether or not it landed."""
        with self._lock:
            self.written.append(key)

    def put(self, key, data, *, md5=None, **kwargs):
        """Put a new object of this transaction (If-None-Match); return its ETag."""
        self.wrote(key)  # before the request: a put whose answer is lost may still have landed
        return s3.put(self.cfg, key, data, metadata=s3.tool_metadata(self.course, self.run_id, md5),
                      if_none_match=True, **kwargs)

    def copy(self, source, dest):
        """Copy an object server-side to a new key of this transaction; return its ETag."""
        self.wrote(dest)
        return s3.copy(self.cfg, source, dest)

    @contextmanager
    def running(self, drop=None):
        """Run the block under the lease guard; on any error before the commit, undo the transaction.

        ``drop()``, when given, deletes what the caller staged for this transaction
        outside its own keys (a staging run it rolls forward); it is skipped when
        the course was lost to another runner, whose work that is now.
        """
        try:
            with self.claim.guarded():
                yield self
        except BaseException as exc:
            if self.commit_doc is None:
                self.undo(exc, drop)
            claims.reraise(self.claim, exc)

    @property
    def committed(self):
        return self.commit_doc is not None

    def commit(self, doc):
        """Replace this transaction's fence with the commit marker ``doc`` (If-Match); return (doc, ETag)."""
        self.claim.check()
        try:
            self.commit_doc, self.commit_etag = marker.commit(self.cfg, self.course, self.run_id, self.claim.token,
                                                              doc)
        except ConcurrentRun as lost:
            # Another runner claimed the course while this one was paused: what is in S3 is its now.
            self.claim.lost = lost
            self.claim.release()
            raise
        return self.commit_doc, self.commit_etag

    def undo(self, exc, drop=None):
        """Delete this transaction's writes (and, with ``drop``, its staging), then record ``exc`` as the failure."""
        try:
            discard(self.cfg, self.course, self.epoch, self.written)  # own epoch: no other runner can name them
            if drop is not None and not self.claim.lost:
                drop()
        except Exception as err:
            logs.event("error", self.course, "cleanup_failed", self.run_id, keys=len(self.written),
                       error=describe(err), next=f"python -m etl rollback {self.course}")
        claims.record_failure(self.claim, exc)
