"""Run one course as a transaction: claim it, write only under its epoch, then commit, or undo every write.

Every actor that writes or deletes a course's objects works through one
``Transaction``::

    tx = Transaction.begin(cfg, course, run_id, EXTRACTING, looked)  # claim, epoch, fence
    with tx.running(drop=...):      # under the lease guard: any error undoes the transaction
        tx.put(key, data)           # each key registered before its request is sent
        tx.add_failure_cleanup(upload.abort)   # each cleanup registered where its resource is made
        tx.commit(doc)              # the commit marker: the one place "committed" is decided
    # or, for a run that ends without a commit (a rollback): tx.end(ROLLED_BACK, "rolled_back")

Before the commit request is sent, any error (an interrupt included) runs the
registered cleanups, deletes the transaction's own writes (keys of its epoch,
which no other runner can name), records the course as failed and releases
the fence. A staging run the record already names (``publish``: a takeover
may roll it forward) and anything ``drop`` deletes outside the transaction go
only after that record write has landed, while this run still holds the
course; a run that lost the course leaves them to the runner that has it.

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
    """One course's transaction: its claim, the keys it has written, its cleanups, and its commit."""

    def __init__(self, claim):
        self.claim = claim
        self.cfg, self.course, self.run_id, self.epoch = claim.cfg, claim.course, claim.run_id, claim.epoch
        self.layout = claim.layout
        self.written = []  # every key a request was sent for, registered before it was sent
        self.published = set()  # of those, the keys the record names (a staged run): deleted only while held
        self.cleanups = []  # (fn, args, kwargs) to run on failure, registered where each resource is made
        self.commit_doc = self.commit_etag = None
        self._lock = threading.Lock()

    @classmethod
    def begin(cls, cfg, course, run_id, target, looked=None, uncommit=False):
        """Claim ``course`` for ``run_id`` (moving it to ``target``) and fence it; return the Transaction."""
        return cls(claims.claim(cfg, course, run_id, target, looked, uncommit=uncommit))

    def wrote(self, key):
        """Register a key this transaction is about to write, so an undo deletes it whether or not it landed."""
        with self._lock:
            self.written.append(key)

    def publish(self, keys, move):
        """Move the record with ``move()`` so that it names ``keys`` (a staged run): from then on they are the course's.

        They count as named from before the request is sent (its answer may be
        lost), and no longer when the move is known not to have landed.
        """
        keys = set(keys)
        with self._lock:
            self.published |= keys
        try:
            move()
        except ConcurrentRun:  # another runner's write won: the record names its run, not these keys
            with self._lock:
                self.published -= keys
            raise

    def add_failure_cleanup(self, fn, *args, **kwargs):
        """Register ``fn(*args, **kwargs)`` to run if the transaction is undone (s3transfer's add_failure_cleanup)."""
        with self._lock:
            self.cleanups.append((fn, args, kwargs))

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
        outside its own keys (a staging run it rolls forward); it runs only once
        the failure is recorded by this run, which then still holds the course.
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
            self.claim.lose(lost)
            raise
        except BaseException as exc:
            self._settle(exc)
        self.claim.committed()
        return self.commit_doc, self.commit_etag

    def end(self, state_, reason, **fields):
        """End the transaction without a commit: move the course to ``state_``, then release the fence (``reason``)."""
        self.claim.move(state_, **fields)
        claims.release_fence(self.claim, reason)

    def _settle(self, exc):
        """Learn from the commit key whether the commit request that failed with ``exc`` landed; return if it did."""
        try:
            with client.unguarded():  # conditional on this run's own fence: safe whatever the lease
                seen = marker.read(self.cfg, self.course)
                if seen.etag == self.claim.token:  # still this run's fence: not landed; make sure it never will
                    seen = claims.release_fence(self.claim, "failed") or marker.read(self.cfg, self.course)
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
            if self.claim.status == self.claim.FENCED:  # released before a retry of this very release was heard
                self.claim.fence_released()
            raise exc
        raise self.claim.lose(ConcurrentRun(f"course {self.course}: run {self.run_id} sent its commit, and the "
                                            f"commit key now holds another run's {seen.holds}; this run stops and "
                                            "changes nothing of it; check `python -m etl status`")) from exc

    def _record_in_doubt(self, exc):
        """Move the course to in_doubt, so status says so and no lease keeps the next run waiting; never mask ``exc``."""
        try:
            with client.unguarded():
                self.claim.move(state.IN_DOUBT, error=describe(exc))
        except Exception as err:  # S3 is what failed: the record stays promoting until its lease runs out
            logs.event("error", self.course, "status_write_failed", self.run_id, error=describe(err))
            self.claim.stop()

    def undo(self, exc, drop=None):
        """Undo the transaction: its cleanups and own writes, then the failure record, then what the record named.

        Keys of its own epoch that nobody else can name go first, whatever the
        lease. The staged run the record names (``publish``) and ``drop`` go only
        if the failure record lands: then this run still held the course, and
        no takeover can be rolling them forward.
        """
        try:
            for fn, args, kwargs in reversed(self.cleanups):
                fn(*args, **kwargs)
            discard(self.cfg, self.course, self.epoch, [k for k in self.written if k not in self.published])
        except Exception as err:
            logs.event("error", self.course, "cleanup_failed", self.run_id, keys=len(self.written),
                       error=describe(err), next=f"python -m etl rollback {self.course}")
        if not claims.record_failure(self.claim, exc):
            return
        try:
            with client.unguarded():
                discard(self.cfg, self.course, self.epoch, sorted(self.published))
                if drop is not None:
                    drop()
        except Exception as err:
            logs.event("error", self.course, "cleanup_failed", self.run_id, keys=len(self.published),
                       error=describe(err), next=f"python -m etl rollback {self.course}")
