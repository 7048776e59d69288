"""Run one course as a transaction: claim it, write only under its epoch, then commit, or undo every write.

A verb drives a course through a ``Transaction``::

    tx = Transaction.begin(cfg, course, run_id, EXTRACTING, looked)  # claim, epoch, fence
    with tx.running(drop=...):      # under the lease guard: any error undoes the transaction
        tx.put(key, data)           # each key registered before its request is sent
        tx.commit(doc)              # the commit marker: the one place "committed" is decided

Before the commit request is sent, any error (an interrupt included) deletes
the transaction's own writes (keys of its epoch, which no other runner can
name), calls ``drop`` for what the caller staged earlier, records the course as
failed and releases the fence; the error raised is that the course was lost,
when it was.

Once the commit request is sent the transaction is *in doubt* until the commit
key is read back, and an in-doubt transaction is never undone:

- the key holds this run's commit: committed (its answer was lost); finish;
- it holds this run's fence: the commit has not landed; the fence is released
  first (If-Match on it), so the request can never land later, then the
  transaction is undone as before;
- it holds anything else: another runner's; the course was lost, and nothing
  of what is committed there is touched;
- it cannot be read: every object stays, the course is recorded ``in_doubt``,
  and ``InDoubt`` (exit 3) names the next step. The next run, on any machine,
  reads the key and finishes or rolls forward from S3 alone.

After the commit the course is committed whatever happens next.
"""

import threading
from contextlib import contextmanager

from etl.model import client, logs
from etl.model.errors import ConcurrentRun, InDoubt, LeaseExpired, describe
from etl.protocol import claims, marker, state
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
            if isinstance(exc, InDoubt):
                self._record_in_doubt(exc)
            elif self.commit_doc is None:
                self.undo(exc, drop)
            claims.reraise(self.claim, exc)

    @property
    def committed(self):
        return self.commit_doc is not None

    def commit(self, doc):
        """Replace this transaction's fence with the commit marker ``doc`` (If-Match); return (doc, ETag).

        The one place "committed" is decided. A commit whose answer is lost is
        settled by reading the key back (``_settle``), never undone blindly.
        """
        self.claim.check()
        try:
            self.commit_doc, self.commit_etag = marker.commit(self.cfg, self.course, self.run_id, self.claim.token,
                                                              doc)
        except LeaseExpired as exc:  # the guard stopped a retry (or the first attempt): it may have landed
            self._settle(exc)
        except ConcurrentRun as lost:
            # 412: another runner claimed the course while this one was paused: what is in S3 is its now.
            self._lose(lost)
            raise
        except BaseException as exc:
            self._settle(exc)
        return self.commit_doc, self.commit_etag

    def _settle(self, exc):
        """Learn from the commit key whether the commit request that failed with ``exc`` landed; return if it did."""
        try:
            with client.unguarded():  # conditional on this run's own fence: safe whatever the lease
                seen = marker.read(self.cfg, self.course)
                if seen.etag == self.claim.token:  # still this run's fence: not landed; make sure it never will
                    released = marker.release(self.cfg, self.course, self.run_id, self.epoch, self.claim.token,
                                              "failed")
                    seen = released or marker.read(self.cfg, self.course)  # or it landed just now
        except Exception as err:
            raise InDoubt(f"course {self.course}: run {self.run_id} sent its commit but cannot read "
                          f"{self.layout.marker} back ({describe(err)}); nothing was deleted, and the course is "
                          f"in doubt until a run reads that key: when S3 answers, re-run `python -m etl migrate "
                          f"{self.course}`, which finishes or rolls it forward") from exc
        if seen.holds == "commit" and seen.is_run(self.run_id, self.epoch):
            self.commit_doc, self.commit_etag = seen.doc, seen.etag
            logs.event("warning", self.course, "commit_confirmed", self.run_id, epoch=self.epoch, error=describe(exc),
                       note="the commit's answer was lost; reading the commit key back shows it landed")
            return
        if seen.holds == marker.RELEASED and seen.is_run(self.run_id, self.epoch):
            self.claim.released = True  # the undo has no fence left to release
            raise exc
        self._lose(ConcurrentRun(f"course {self.course}: run {self.run_id} sent its commit, and the commit key "
                                 f"now holds another run's {seen.holds}; this run stops and changes nothing "
                                 "of it; check `python -m etl status`"))
        raise self.claim.lost from exc

    def _lose(self, lost):
        self.claim.lost = lost
        self.claim.release()

    def _record_in_doubt(self, exc):
        """Move the course to in_doubt, so status says so and no lease keeps the next run waiting; never mask ``exc``."""
        try:
            with client.unguarded():
                self.claim.move(state.IN_DOUBT, error=describe(exc))
        except Exception as err:  # S3 is what failed: the record stays promoting until its lease runs out
            logs.event("error", self.course, "status_write_failed", self.run_id, error=describe(err))
            self.claim.release()

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
