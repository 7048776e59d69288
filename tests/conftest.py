"""Fixtures: a real S3 endpoint over HTTP (moto's server) and an Open edX-shaped contentstore.

The contentstore is a mongomock Database, or a fresh database on a real MongoDB
when ETL_TEST_MONGO_URI is set; either way it is filled through GridFS exactly
as edx-platform's MongoContentStore.save fills it.
"""

import logging
import os
import uuid

import pytest

import etl
from etl.demo.sample import cues, save_asset, sjson, srt
from tests.edx import django, val  # noqa: F401 (Open edX's fixtures: real edx-val, for the tests that ask for them)

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "ETL_BUCKET", "ETL_MONGO_URI", "ETL_S3_ENDPOINT_URL"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def s3_endpoint():
    """Start moto's S3 server in a process of its own, on a free loopback port, for the whole session."""
    import subprocess
    import sys

    port = free_port()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-m", "tests.children.moto_server", str(port)], cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, proc, "moto's server")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(30)


@pytest.fixture(scope="session")
def inprocess_s3_endpoint():
    """Start moto's S3 server in this process, for the tests that change how moto answers (SSE-KMS ETags)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def wait_for_port(port, proc, what, seconds=60):
    """Wait until ``proc`` accepts connections on the loopback ``port``; fail if it exits or takes too long."""
    import socket
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.05)


def free_port():
    """Return a free TCP port on the loopback address."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A real redis-server on a free loopback port, persistence off, stopped by its PID."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self):
        import shutil
        import subprocess
        import time

        import redis

        binary = shutil.which("redis-server")
        if not binary:
            pytest.skip("redis-server is not installed (apt-get install redis-server)")
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture
def redis_server():
    """Start a redis-server for one test; stop it after."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def contentstore():
    """Return an empty contentstore Database: mongomock, or real MongoDB via ETL_TEST_MONGO_URI."""
    uri = os.environ.get("ETL_TEST_MONGO_URI")
    if uri:
        import pymongo

        client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
        name = f"etl_test_{uuid.uuid4().hex[:12]}"
        yield client[name]
        client.drop_database(name)
        client.close()
    else:
        import mongomock
        import mongomock.gridfs

        mongomock.gridfs.enable_gridfs_integration()
        yield mongomock.MongoClient()["edxapp"]


@pytest.fixture
def make_cfg(s3_endpoint, contentstore, tmp_path):
    """Return a factory of Configs on one fresh bucket; keyword arguments override settings."""
    bucket = f"etl-test-{uuid.uuid4().hex[:16]}"
    shared = {}

    def make(**overrides):
        settings = dict(bucket=bucket, s3_endpoint_url=s3_endpoint, contentstore=contentstore,
                        manifest_dir=str(tmp_path / "manifests"), progress=False, s3_concurrency=8)
        settings.update(overrides)
        cfg = etl.Config(**settings)
        if "client" not in shared:
            cfg.s3.create_bucket(Bucket=bucket)
            shared["client"] = cfg.s3
        return cfg

    return make


@pytest.fixture
def cfg(make_cfg):
    """Return a Config on a fresh bucket and the test's contentstore."""
    return make_cfg()


COURSE = "course-v1:edX+DemoX+2024_T1"
OLD = "edX/DemoX/Demo_Course"


def fill(db, course_id=COURSE):
    """Save a course of nine transcripts, four of them unparseable, and one handout; return {name: bytes}."""
    data = {
        "subs_abc.srt.sjson": sjson(cues(5)),
        "es_subs_abc.srt.sjson": sjson(cues(5, "Hola")),
        "0b5f9e1c-5a34-4b8e-9d0e-0c9a3f6c2b11-fr.srt": srt(cues(3, "Bonjour")),
        "My Lecture – ünïcode 字幕.srt": srt(cues(4)),
        "subs_big.srt.sjson": sjson(cues(9000)),
        "subs_empty.srt.sjson": b"",
        "subs_bad_lists.srt.sjson": b'{"start": [1, 2], "end": [3], "text": ["a", "b"]}',
        "subs_not_json.srt.sjson": b"\x00\x05\x16\x07Mac OS X AppleDouble",
        "broken-en.srt": b"this is not\nan srt file\n",
    }
    for name, body in data.items():
        save_asset(db, course_id, name, body, legacy_md5=name.startswith("es_"))
    save_asset(db, course_id, "handout.pdf", b"%PDF-1.4")
    return data


def pytest_terminal_summary(terminalreporter):
    """Say loudly, at the end, which tests did not run because a program or a data set is missing here."""
    missing = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        for what in ("redis-server", "Chromium", "../shared/data", "edxval"):
            if what in reason:
                missing[what] = missing.get(what, 0) + 1
    if missing:
        terminalreporter.section("NOT RUN HERE", sep="!", red=True, bold=True)
        for what, count in missing.items():
            terminalreporter.write_line(f"{count} tests skipped: {what} is missing", red=True)
        terminalreporter.write_line("`bash .ci/run` installs redis-server and Chromium and then runs the suite, "
                                    "as CI does; edxval comes with pip install -e '.[test]' (the [openedx] extra); "
                                    "the real exports come from ../shared/data beside the checkout.")


SERVERS = {"s3_endpoint", "inprocess_s3_endpoint", "cfg", "make_cfg", "val", "django", "redis_server", "broker",
           "workers", "s3rver", "front"}
SLOW = {"test_crash", "test_freeze_sweep"}
SUBPROCESSES = {"test_celery", "test_concurrency", "test_operator_view", "test_hostile", "test_bench",
                "test_secrets", "test_front_door", "test_cli", "test_architecture", "test_memory"}


def pytest_collection_modifyitems(items):
    """Mark each test by what it uses: browser, slow, integration (real servers or processes), or unit."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module == "test_report_browser":
            item.add_marker(pytest.mark.browser)
        if module in SLOW:
            item.add_marker(pytest.mark.slow)
        if SERVERS & set(getattr(item, "fixturenames", ())) or module in SUBPROCESSES | SLOW:
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)
