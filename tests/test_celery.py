"""Batches on Celery: a real redis-server, real `celery worker` processes (prefork), real HTTP S3.

Every scenario ends with the invariant: every course promoted exactly once,
verified, byte-exact, one marker, no staging left (unless it says otherwise).
"""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import etl
from etl.batch import tasks
from tests.batch import build_batch
from tests.conftest import RedisServer
from tests.helpers import listing
from tests.test_migrate import assert_promoted_exactly_once, commits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytest.importorskip("celery")


@pytest.fixture(scope="module")
def broker():
    """One redis-server for the module; the enqueuer (this process) reads ETL_BROKER_URL once."""
    server = RedisServer().start()
    os.environ["ETL_BROKER_URL"] = server.url
    yield server
    server.stop()


class Worker:
    """A real `celery -A tests.celery_app worker` process, its pool children loading the test contentstore."""

    def __init__(self, cfg, broker, queue, batch=0, concurrency=2, name="w1", **env):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
        self.env.update(ETL_BROKER_URL=broker.url, ETL_BUCKET=cfg.bucket, ETL_S3_ENDPOINT_URL=cfg.s3_endpoint_url,
                        ETL_STAGING_PREFIX=cfg.staging_prefix, ETL_LIVE_PREFIX=cfg.live_prefix,
                        ETL_STATE_PREFIX=cfg.state_prefix, ETL_CELERY_QUEUE=queue, ETL_TEST_BATCH=str(batch),
                        ETL_MANIFEST_DIR=cfg.manifest_dir, **env)  # the test's folder, never the checkout's
        if os.environ.get("ETL_TEST_MONGO_URI"):
            self.env["ETL_MONGO_URI"] = os.environ["ETL_TEST_MONGO_URI"]
        self.args = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "--pool", "prefork",
                     "--concurrency", str(concurrency), "-Q", queue, "-n", f"{name}@%h", "--without-gossip",
                     "--without-mingle", "--loglevel", "INFO"]
        self.lines, self.ready = [], threading.Event()

    def start(self):
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        assert self.ready.wait(60), "the worker never became ready:\n" + "\n".join(self.lines[-30:])
        return self

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if " ready." in line:
                self.ready.set()

    def kill(self):
        """SIGKILL the worker and its pool: no goodbye to the broker."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def workers():
    started = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def queue(request):
    name = f"etl-test-{request.node.name[:40]}-{os.getpid()}"
    os.environ["ETL_CELERY_QUEUE"] = name
    yield name
    os.environ.pop("ETL_CELERY_QUEUE", None)


def wait_for_commits(cfg, n, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(commits(cfg)) < n:
        time.sleep(0.2)
    assert len(commits(cfg)) >= n


def test_a_hundred_courses_on_two_worker_processes(cfg, contentstore, broker, queue, workers):
    ids = build_batch(contentstore, 100)
    workers.append(Worker(cfg, broker, queue, batch=100).start())
    summary = etl.migrate(cfg, ids, engine="celery")
    assert summary.count("promoted") == 100 and summary.exit_code == 0, summary.text()
    assert_promoted_exactly_once(cfg, contentstore, ids)
    again = etl.migrate(cfg, ids, engine="celery")  # promoted courses are skipped before anything is queued
    assert again.count("skipped") == 100


def test_a_pool_process_killed_mid_course_has_its_course_redelivered(cfg, contentstore, broker, queue, workers,
                                                                     tmp_path):
    ids = build_batch(contentstore, 6)
    pause = tmp_path / "paused"
    workers.append(Worker(cfg, broker, queue, batch=6, ETL_TEST_PAUSE_COURSE=ids[3],
                          ETL_TEST_PAUSE_FILE=str(pause)).start())
    results = tasks.enqueue(cfg, ids, retries=1)
    deadline = time.monotonic() + 60
    while not (pause.exists() and pause.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(int(pause.read_text().split()[0]), signal.SIGKILL)  # the pool child, mid-course
    rows = list(tasks.collect(results, progress=_Count()))
    assert {r["outcome"] for r in rows} == {"promoted"}, rows
    assert_promoted_exactly_once(cfg, contentstore, ids)
    killed = [line for line in workers[0].lines if "SIGKILL" in line]  # billiard's own line, in the tool's format
    assert killed and all(line.startswith("20") and " source=" in line for line in killed), killed


def test_a_whole_worker_killed_has_its_course_redelivered_to_another(cfg, contentstore, broker, queue, workers,
                                                                     tmp_path):
    ids = build_batch(contentstore, 4)
    pause = tmp_path / "paused"
    short = {"ETL_TASK_TIME_LIMIT": "8", "ETL_VISIBILITY_TIMEOUT": "10"}
    first = Worker(cfg, broker, queue, batch=4, concurrency=1, name="first", ETL_TEST_PAUSE_COURSE=ids[1],
                   ETL_TEST_PAUSE_FILE=str(pause), **short).start()
    workers.append(first)
    results = tasks.enqueue(cfg, ids[1:2], retries=1)
    deadline = time.monotonic() + 60
    while not pause.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    first.kill()  # the message stays unacknowledged in Redis until the visibility timeout
    workers.append(Worker(cfg, broker, queue, batch=4, name="second", **short).start())
    rows = list(tasks.collect(results, progress=_Count(), patience=60))
    assert [r["outcome"] for r in rows] == ["promoted"], rows
    assert_promoted_exactly_once(cfg, contentstore, ids[1:2])


def test_the_same_course_enqueued_five_times_is_promoted_once_and_never_failed(cfg, contentstore, broker, queue,
                                                                               workers):
    course = build_batch(contentstore, 3)[2]
    workers.append(Worker(cfg, broker, queue, batch=3).start())
    target = tasks.target_of(cfg)
    sent = [tasks.migrate_course.apply_async((course, {"retries": 1}, target), queue=queue) for _ in range(5)]
    outcomes = sorted(result.get(timeout=120)["outcome"] for result in sent)
    # Every duplicate that met the course held retried until it was promoted: none reports it undone.
    assert set(outcomes) <= {"promoted", "skipped"} and "promoted" in set(outcomes), outcomes
    assert_promoted_exactly_once(cfg, contentstore, [course])
    assert "failed" not in set(etl.history(cfg, course)["event"])


def test_a_broker_restart_mid_batch_is_finished_by_a_rerun(cfg, contentstore, broker, queue, workers):
    ids = build_batch(contentstore, 20)
    workers.append(Worker(cfg, broker, queue, batch=20, concurrency=1).start())
    queued = etl.migrate(cfg, ids, engine="celery", wait=False)
    assert queued.count("queued") == 20 and queued.exit_code == 0
    wait_for_commits(cfg, 3)
    broker.stop()  # persistence is off: what was queued is gone
    broker.start()
    summary = etl.migrate(cfg, ids, engine="celery")  # the operator re-runs the same command
    assert summary.count("promoted") + summary.count("skipped") == 20, summary.text()
    assert summary.exit_code == 0
    assert_promoted_exactly_once(cfg, contentstore, ids)


def messages_waiting(broker, queue):
    import redis

    return redis.Redis.from_url(broker.url).llen(queue)


def test_a_rerun_attaches_to_queued_tasks_instead_of_sending_them_again(cfg, contentstore, broker, queue, workers,
                                                                       caplog):
    ids = build_batch(contentstore, 5)
    first = tasks.enqueue(cfg, ids, retries=1)  # no worker yet: every task waits in the queue
    assert messages_waiting(broker, queue) == 5
    caplog.set_level("INFO", logger="etl")
    second = tasks.enqueue(cfg, ids, retries=1)  # the operator re-runs the same command
    assert messages_waiting(broker, queue) == 5, "a queued task was sent a second time"
    assert [r.id for _, r in second] == [r.id for _, r in first]
    assert any("event=enqueued" in m and "sent=0" in m and "attached=5" in m for m in caplog.messages), caplog.messages
    workers.append(Worker(cfg, broker, queue, batch=5).start())
    rows = list(tasks.collect(second, progress=_Count()))
    assert sorted(r["outcome"] for r in rows) == ["promoted"] * 5, rows
    assert_promoted_exactly_once(cfg, contentstore, ids)


def test_queued_tasks_whose_messages_were_lost_are_sent_again(cfg, contentstore, broker, queue, workers):
    import redis

    ids = build_batch(contentstore, 3)
    tasks.enqueue(cfg, ids, retries=1)
    redis.Redis.from_url(broker.url).delete(queue)  # the broker lost its messages, the results kept their marks
    again = tasks.enqueue(cfg, ids, retries=1)
    assert messages_waiting(broker, queue) == 3
    workers.append(Worker(cfg, broker, queue, batch=3).start())
    rows = list(tasks.collect(again, progress=_Count()))
    assert sorted(r["outcome"] for r in rows) == ["promoted"] * 3, rows
    assert_promoted_exactly_once(cfg, contentstore, ids)


def test_a_worker_for_another_target_refuses_and_writes_nothing(make_cfg, contentstore, broker, queue, workers):
    cfg = make_cfg()
    other = make_cfg(bucket=f"{cfg.bucket}-b")
    other.s3.create_bucket(Bucket=other.bucket)
    ids = build_batch(contentstore, 2)
    worker = Worker(other, broker, queue, batch=2).start()
    workers.append(worker)
    summary = etl.migrate(cfg, ids, engine="celery")
    assert summary.count("failed") == 2 and summary.exit_code == 4
    assert all("not to the enqueuer's target" in e for e in summary.courses["error"])
    assert listing(cfg) == {} and listing(other) == {}
    told = [line for line in worker.lines if "not to the enqueuer's target" in line]
    assert told and "Traceback" not in "\n".join(worker.lines)  # an expected refusal: one line, no traceback
    assert all(line.startswith("20") and " source=celery message=" in line for line in told), told
    from etl.batch.tasks import task_rows  # what --no-wait's operator reads back from the result backend

    rows = task_rows(cfg, ids)
    assert [r["outcome"] for r in rows] == ["refused", "refused"] and all(
        r["task"] == "failure" and "not to the enqueuer's target" in r["error"] for r in rows), rows
    assert task_rows(cfg, ["course-v1:Never+Sent+2026"])[0]["task"] == "unknown"


def test_no_secret_ever_enters_redis(cfg, contentstore, broker, queue, workers, monkeypatch):
    import redis

    aws_secret, password = "Redis-Scan-AWS-Secret-9f8e7d6c5b4a", "Redis-Scan-Mongo-Pa55"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws_secret)
    ids = build_batch(contentstore, 5)
    workers.append(Worker(cfg, broker, queue, batch=5, AWS_SECRET_ACCESS_KEY=aws_secret,
                          ETL_MONGO_URI=f"mongodb://etl:{password}@127.0.0.1:1/edxapp").start())
    assert etl.migrate(cfg, ids, engine="celery").count("promoted") == 5
    client = redis.Redis.from_url(broker.url)
    dump = []
    for key in client.scan_iter("*"):
        kind = client.type(key).decode()
        value = {"string": lambda: client.get(key), "list": lambda: client.lrange(key, 0, -1),
                 "hash": lambda: client.hgetall(key), "set": lambda: client.smembers(key),
                 "zset": lambda: client.zrange(key, 0, -1)}.get(kind, lambda: b"")()
        dump.append(repr((key, value)).encode())
    blob = b"\n".join(dump)
    assert len(dump) > 5 and b"celery-task-meta" in blob  # results were there to scan
    assert aws_secret.encode() not in blob and password.encode() not in blob


class _Count:
    """A progress sink that only counts."""

    def __init__(self):
        self.n = 0

    def update(self, n):
        self.n += n


def test_the_cli_starts_a_worker_and_enqueues_to_it(cfg, contentstore, broker, queue, capsys):
    from etl.cli.main import main

    ids = build_batch(contentstore, 3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env.update(ETL_BROKER_URL=broker.url, ETL_CELERY_QUEUE=queue, ETL_MANIFEST_DIR=cfg.manifest_dir)
    worker = subprocess.Popen([sys.executable, "-m", "tests.children.cli", "3", "0", "worker", "--concurrency", "1",
                               "--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        lines = []
        for line in worker.stdout:
            lines.append(line)
            if " ready." in line:
                break
        assert any(" ready." in line for line in lines), "".join(lines[-20:])
        main(["migrate", *ids, "--engine", "celery", "--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url,
              "--quiet"], contentstore=contentstore)
        out = capsys.readouterr().out
        assert "3 promoted" in out
        assert_promoted_exactly_once(cfg, contentstore, ids)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)


def test_kombu_scans_for_unacknowledged_messages_at_every_sweep_so_a_dead_worker_costs_no_extra_100_s():
    from kombu.transport.redis import Channel

    options = tasks.settings({"ETL_BROKER_URL": "redis://127.0.0.1:1/5"})["broker_transport_options"]
    assert options["unacked_restore_throttle"] == 1 and options["visibility_timeout"] == 1800 + 600
    assert "unacked_restore_throttle" in Channel.from_transport_options  # an option this kombu reads


def test_an_enqueuer_whose_courses_no_worker_takes_says_so_once_naming_the_queue(cfg, contentstore, broker, queue,
                                                                                   monkeypatch):
    import logging

    ids = build_batch(contentstore, 2)
    said = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: said.append(record.getMessage())
    logger = logging.getLogger("etl")
    logger.addHandler(handler)
    try:
        results = tasks.enqueue(cfg, ids, retries=0)  # no worker consumes the queue
        rows = tasks.collect(results, progress=_Count(), idle=0.5)
        waiting = threading.Thread(target=lambda: next(rows, None), daemon=True)
        waiting.start()
        deadline = time.monotonic() + 30
        while not said and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        logger.removeHandler(handler)
    assert len(said) == 1 and "event=no_worker" in said[0] and f"queue={queue}" in said[0], said
    assert f"python -m etl worker --queues {queue}" in said[0]
    assert commits(cfg) == set()  # the courses wait in the broker; nothing was done
