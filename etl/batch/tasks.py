"""Run a batch on Celery with a Redis broker: one task per course, on the workers Open edX already runs.

The broker only hands out work. What is done lives where it always does: the
commit markers and the status table in S3. A task runs exactly the per-course
unit that ``migrate`` runs (``etl.batch.unit.migrate_course``), so a redelivered or
duplicated task is safe: the claim and the marker make it a no-op or a refusal.

Settings come from the environment of whoever imports this module, read when
Celery first needs them: ``ETL_BROKER_URL`` (``redis://…``), ``ETL_RESULT_BACKEND``
(default: the broker), ``ETL_CELERY_QUEUE`` (default ``transcript-etl``),
``ETL_TASK_TIME_LIMIT`` (seconds, default 1800) and ``ETL_VISIBILITY_TIMEOUT``
(default the time limit plus 600). A worker's migration settings are its own
``ETL_*`` variables and AWS's usual credential chain: a message carries only the
course id, the run options and a fingerprint of the target.
"""

import hashlib
import json
import os
import threading
import time

from celery import Celery, signals
from celery.result import ResultSet

from etl.batch.unit import migrate_course as run
from etl.model import logs, redact
from etl.model.config import config_from_env
from etl.model.errors import StorageError, UsageError


QUEUE = "transcript-etl"
TASK = "etl.migrate_course"
UNSET = "redis://etl-broker-url-is-not-set.invalid:6379/0"
HELD_RETRY_SECONDS = 5  # how soon a task for a course another runner holds looks again


def settings(environ=None):
    """Return the Celery settings for long, idempotent course tasks, from the environment."""
    environ = os.environ if environ is None else environ
    broker = environ.get("ETL_BROKER_URL") or UNSET  # never a silent default: ``check_broker`` refuses it
    redact.register_uri(broker)
    limit = int(environ.get("ETL_TASK_TIME_LIMIT") or 1800)
    visibility = int(environ.get("ETL_VISIBILITY_TIMEOUT") or limit + 600)
    if visibility <= limit:
        raise UsageError(f"ETL_VISIBILITY_TIMEOUT ({visibility} s) must be longer than ETL_TASK_TIME_LIMIT "
                         f"({limit} s), or Redis hands a running course to a second worker")
    return {
        "broker_url": broker,
        "result_backend": environ.get("ETL_RESULT_BACKEND") or broker,
        "task_default_queue": environ.get("ETL_CELERY_QUEUE") or QUEUE,
        # A course task is long and idempotent: acknowledge it only once it is done, hand it back if the
        # worker process dies, and take one at a time.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_track_started": True,
        # The hard limit stays below the visibility timeout (Redis redelivers an unacknowledged message
        # after it); the soft limit leaves the course a minute to roll back cleanly.
        "task_time_limit": limit,
        "task_soft_time_limit": max(1, limit - 60),
        # kombu sweeps for messages past the visibility timeout every 10 s, but scans only every 10th sweep
        # by default: a whole worker killed would wait up to 100 s more. Scan at every sweep.
        "broker_transport_options": {"visibility_timeout": visibility, "unacked_restore_throttle": 1},
        "result_backend_transport_options": {"visibility_timeout": visibility},
        "visibility_timeout": visibility,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_expires": 7 * 24 * 3600,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }


app = Celery("etl")
app.add_defaults(settings)  # read lazily, when Celery first needs a setting


_config = {"cfg": None}
_config_lock = threading.Lock()


def configure(cfg):
    """Use ``cfg`` for the courses this worker process runs, instead of one built from its environment.

    For programs that embed a worker and already hold a contentstore Database.
    """
    with _config_lock:
        _config["cfg"] = cfg


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _one_log_format(logger, **_):
    """Write Celery's own lines in the tool's format, so a worker's log is one format to grep.

    The pool's own logger (billiard's ``multiprocessing``, which says when a
    pool process was killed) does not propagate to the root: it is set too.
    """
    from billiard.util import get_logger as pool_logger

    for each in (logger, pool_logger()):
        for handler in each.handlers:
            handler.setFormatter(logs.OtherFormatter(logs.FORMAT))


@signals.worker_process_init.connect
def _fresh_connections(**_):
    """Give each pool process its own S3 and MongoDB connections, when its parent configured one."""
    with _config_lock:
        if _config["cfg"] is not None:
            _config["cfg"].after_fork()


def worker_config():
    """Return this worker process's Config, built once from its own ``ETL_*`` environment."""
    with _config_lock:
        if _config["cfg"] is None:
            _config["cfg"] = config_from_env(progress=False)  # ETL_MANIFEST_DIR included
        return _config["cfg"]


def check_broker(timeout=5):
    """Refuse, before anything is sent, a broker that is not configured or does not answer."""
    if not os.environ.get("ETL_BROKER_URL"):
        raise UsageError("no broker given; set ETL_BROKER_URL to the Redis URL the workers use "
                         "(redis://HOST:6379/0); nothing was queued")
    where = redact.uri(app.conf.broker_url)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # kombu's OperationalError, redis' ConnectionError, a bad URL
        raise UsageError(f"cannot reach the broker at {where} ({type(exc).__name__}); start it, or set "
                         "ETL_BROKER_URL to the broker the workers use; nothing was queued") from None


def target_of(cfg):
    """Return a fingerprint of where a Config migrates to: bucket, endpoint and the three prefixes."""
    where = [cfg.bucket, cfg.s3_endpoint_url or "", cfg.staging_prefix, cfg.live_prefix, cfg.state_prefix]
    return hashlib.sha256(json.dumps(where).encode()).hexdigest()[:16]


class TargetMismatch(UsageError):
    """A worker was handed a course for another bucket or other prefixes than its own."""


@app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=2 * 3600 // HELD_RETRY_SECONDS, throws=(TargetMismatch,))
def migrate_course(self, course_id, options, target):
    """Migrate one course exactly as ``migrate`` does; refuse, writing nothing, if this worker's target differs."""
    cfg = worker_config()
    mine = target_of(cfg)
    if mine != target:
        raise TargetMismatch(f"course {course_id}: this worker migrates to bucket {cfg.bucket} (target {mine}), "
                             f"not to the enqueuer's target {target}; nothing was written; start workers with the "
                             "same ETL_BUCKET, ETL_S3_ENDPOINT_URL and prefixes, or give each target its own queue")
    row = run(cfg, course_id, retries=int(options.get("retries", 1)))
    if row["outcome"] == "claimed" and self.request.retries < self.max_retries:
        # Another runner holds the course: look again later, until it is promoted or its lease runs out and
        # this task takes it over. The enqueuers of a course share this task's id and read its last result.
        raise self.retry(countdown=HELD_RETRY_SECONDS)
    return row


def task_id(target, course_id):
    """Return the task id of a course: the same in every run of the same batch, so a re-run can attach to it."""
    return f"{target}:{course_id}"


QUEUED = "QUEUED"  # a task's state from its sending until a worker starts it (Celery's own is PENDING, as for none)
STATE_BATCH = 1000  # task states read in one round trip


def enqueue(cfg, ids, retries, queue=None):
    """Send one task per course and return [(course id, AsyncResult)]; attach to a course's task already under way.

    A course's task is under way when it is queued (``QUEUED``), running
    (``STARTED``) or waiting to look again at a course another runner holds
    (``RETRY``): it is attached to, not sent again. Anything else (no task, or
    one that ended) is sent. When the queue holds no message at all, a
    ``QUEUED`` task's message was lost with the broker's data, and it is sent again.
    """
    check_broker()
    target = target_of(cfg)
    queue = queue or queue_name()
    states = _states([task_id(target, c) for c in ids])
    waiting = _messages_in(queue) if QUEUED in states.values() else 0
    under_way = {"STARTED", "RETRY"} | ({QUEUED} if waiting else set())
    results, sent = [], 0
    for course_id in ids:
        tid = task_id(target, course_id)
        if states.get(tid) in under_way:
            results.append((course_id, migrate_course.AsyncResult(tid)))
            continue
        app.backend.store_result(tid, None, QUEUED)  # before the message: a worker's STARTED always comes after
        results.append((course_id, migrate_course.apply_async((course_id, {"retries": retries}, target),
                                                             task_id=tid, queue=queue)))
        sent += 1
    logs.event("info", "*", "enqueued", courses=len(ids), sent=sent, attached=len(ids) - sent, queue=queue,
               target=target)
    return results


def _states(ids):
    """Return {task id: state} for the tasks the result backend knows, reading many per round trip."""
    backend, found = app.backend, {}
    for start in range(0, len(ids), STATE_BATCH):
        chunk = ids[start:start + STATE_BATCH]
        values = backend.mget([backend.get_key_for_task(i) for i in chunk])
        found.update({i: backend.decode_result(v)["status"] for i, v in zip(chunk, values) if v})
    return found


def _messages_in(queue):
    """Return how many messages wait in ``queue`` (the broker's count; reserved messages are not in it)."""
    with app.connection_for_write() as conn:
        try:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
        except conn.channel_errors:  # no such queue: nothing waits in it
            return 0


def queue_name():
    """Return the queue courses are sent to: ETL_CELERY_QUEUE, else the app's default (``transcript-etl``)."""
    return os.environ.get("ETL_CELERY_QUEUE") or app.conf.task_default_queue


def collect(results, progress, patience=120, idle=None):
    """Wait for every course's task; yield its summary row as it finishes.

    The result backend's native join tells of each task as it ends (Redis:
    one subscription per task, after one read of them all), so a batch of
    100,000 courses is not polled course by course. A backend that stops
    answering is waited for up to ``patience`` seconds at a time; the queued
    work is still safe in the broker (or in S3), so the error says to re-run.
    When no worker has taken any course ``idle`` seconds after the wait began
    (``ETL_WORKER_WAIT``, 30 s), one warning names the queue and how to start one.
    """
    pending = {result.id: (course_id, result) for course_id, result in results}
    idle = float(os.environ.get("ETL_WORKER_WAIT") or 30) if idle is None else idle
    watch = threading.Timer(idle, _no_worker_yet, args=([r for _, r in pending.values()], idle))
    watch.daemon = True
    watch.start()
    try:
        yield from _collect(pending, progress, patience)
    finally:
        watch.cancel()


def _no_worker_yet(results, idle):
    """Warn once when every task is still queued: no worker consumes the queue (or none for this broker)."""
    try:
        states = {r.state for r in results}
    except Exception:  # the backend is down: collect says so itself
        return
    if states <= {QUEUED, "PENDING"}:
        queue = queue_name()
        logs.event("warning", "-", "no_worker", queue=queue, waited=f"{idle:g}s",
                   note=f"no worker has taken a course from queue {queue}; start one (`python -m etl worker "
                        f"--queues {queue}`) with the same ETL_BROKER_URL, or Ctrl-C and re-run later: the courses "
                        "stay queued")


def _collect(pending, progress, patience):
    quiet_since = None
    while pending:
        try:
            joined = ResultSet([r for _, r in pending.values()], app=app)
            for tid, meta in joined.iter_native(interval=1.0):
                quiet_since = None
                if tid not in pending:
                    continue
                course_id, _ = pending.pop(tid)
                progress.update(1)
                yield row_of(course_id, meta)
        except Exception as exc:  # the broker or result backend is down: wait, it may come back
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > patience:
                raise StorageError(f"the Celery result backend did not answer for {patience} s "
                                   f"({type(exc).__name__}); the queued courses are safe; re-run the same "
                                   "command to attach to them") from None
            time.sleep(1)


def task_rows(cfg, ids):
    """Return, for each course, its task as the result backend has it: state, and outcome or why it was refused.

    The tasks of a batch sent with ``--no-wait`` are read back by their ids
    (``task_id``: this Config's target and the course), so an operator sees what
    the workers did and refused, and why, without waiting on the batch.
    """
    check_broker()
    target = target_of(cfg)
    backend, rows = app.backend, []
    for start in range(0, len(ids), STATE_BATCH):
        chunk = ids[start:start + STATE_BATCH]
        values = backend.mget([backend.get_key_for_task(task_id(target, c)) for c in chunk])
        for course_id, value in zip(chunk, values):
            meta = backend.decode_result(value) if value else {"status": "UNKNOWN"}
            status = meta.get("status")
            row = {"course_id": course_id, "task": status.lower() if status != QUEUED else "queued",
                   "outcome": None, "error": None}
            if status in ("SUCCESS", "FAILURE"):
                done = row_of(course_id, meta)
                refused = status == "FAILURE" and "not to the enqueuer's target" in (done.get("error") or "")
                row.update(outcome="refused" if refused else done.get("outcome"), error=done.get("error"))
            elif status == "UNKNOWN":
                row["error"] = f"no task for this course and target ({target}) in the result backend"
            rows.append(row)
    return rows


def row_of(course_id, meta):
    """Return a finished task's summary row: what the worker returned, or a failed row for its error."""
    if meta.get("status") == "SUCCESS":
        return meta["result"]
    error = app.backend.exception_to_python(meta.get("result"))
    text = redact.scrub(" ".join(str(error).split()))
    return {"course_id": course_id, "outcome": "failed", "attempts": 1, "error": text or meta.get("status")}
