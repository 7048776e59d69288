"""Build the one validated Config that every verb takes first."""

import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from etl.model import redact
from etl.model.client import CONNECT_TIMEOUT, READ_TIMEOUT, check_injected, install_guard, make_s3_client
from etl.model.errors import UsageError
from etl.model.layout import check_prefix
from etl.model.lease import LeaseClock


ENV = {
    "mongo_uri": "ETL_MONGO_URI",
    "mongo_db": "ETL_MONGO_DB",
    "bucket": "ETL_BUCKET",
    "s3_endpoint_url": "ETL_S3_ENDPOINT_URL",
    "staging_prefix": "ETL_STAGING_PREFIX",
    "live_prefix": "ETL_LIVE_PREFIX",
    "state_prefix": "ETL_STATE_PREFIX",
}
# The tool's own S3 identity, kept apart from the platform's (AWS_*, which edx-val's storage and the LMS use).
IDENTITY = {
    "aws_profile": "ETL_AWS_PROFILE",
    "aws_access_key_id": "ETL_AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "ETL_AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "ETL_AWS_SESSION_TOKEN",
    "region_name": "ETL_REGION",
}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_DATABASE = re.compile(r"^[A-Za-z0-9_\-]{1,63}$")  # MongoDB forbids /\. "$ and more; Open edX uses these


@dataclass
class Config:
    """Settings for one migration target: the contentstore, the bucket and the key prefixes.

    ``contentstore`` is any pymongo-compatible Database holding GridFS bucket ``fs``.
    ``s3_client`` may be given to share one boto3 client; otherwise one is built on
    first use, with botocore's standard retry mode and a connection pool sized to
    ``s3_concurrency``. The tool's S3 identity is ``aws_profile``, or
    ``aws_access_key_id`` with ``aws_secret_access_key``, and only when neither is
    given boto3's default chain (``AWS_*``, instance roles). The repr never shows
    the contentstore's URI or any credential.
    """

    bucket: str
    contentstore: Any = field(default=None, repr=False)
    s3_endpoint_url: Optional[str] = None
    staging_prefix: str = "staging"
    live_prefix: str = "video-transcripts"
    state_prefix: str = "_etl"
    transcript_suffixes: tuple = (".sjson", ".srt")
    manifest_dir: Optional[str] = "manifests"
    s3_concurrency: int = 16
    read_batch_bytes: int = 8 * 1024 * 1024
    multipart_bytes: int = 8 * 1024 * 1024
    lease_seconds: int = 300
    retry_attempts: int = 8
    progress: Optional[bool] = None  # None: a bar when stderr is a terminal
    region_name: Optional[str] = None
    s3_client: Any = field(default=None, repr=False, compare=False)
    modulestore_db: Optional[str] = None  # None: the modulestore lives in the contentstore's database
    contentstore_label: Optional[str] = field(default=None, repr=False)  # where it is, password masked
    reconnect: Any = field(default=None, repr=False, compare=False)  # builds a fresh Database (after a fork)
    max_reads_per_second: int = 0  # contentstore queries per second across the process; 0 is no cap
    clock: Any = field(default_factory=LeaseClock, repr=False, compare=False)  # for leases; tests move it on
    aws_profile: Optional[str] = None
    aws_access_key_id: Optional[str] = field(default=None, repr=False)
    aws_secret_access_key: Optional[str] = field(default=None, repr=False)
    aws_session_token: Optional[str] = field(default=None, repr=False)

    def __post_init__(self):
        if not isinstance(self.bucket, str) or not _BUCKET.match(self.bucket):
            raise UsageError(f"bucket {self.bucket!r} is not a valid S3 bucket name; "
                             "set --bucket or ETL_BUCKET")
        for name in ("staging_prefix", "live_prefix", "state_prefix"):
            check_prefix(name, getattr(self, name))
        prefixes = [self.staging_prefix, self.live_prefix, self.state_prefix]
        for i, a in enumerate(prefixes):
            for j, b in enumerate(prefixes):
                if i != j and (a == b or b.startswith(a + "/")):
                    raise UsageError(f"prefixes {a!r} and {b!r} overlap; staging, live and state "
                                     "prefixes must be separate")
        suffixes = tuple(s.lower() for s in self.transcript_suffixes)
        if not suffixes or not all(isinstance(s, str) and s.startswith(".") for s in suffixes):
            raise UsageError(f"transcript suffixes {self.transcript_suffixes!r} must each start with '.'")
        self.transcript_suffixes = suffixes
        for name in ("s3_concurrency", "read_batch_bytes", "lease_seconds", "retry_attempts"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise UsageError(f"{name} must be a positive whole number")
        if self.modulestore_db is not None and not _DATABASE.match(str(self.modulestore_db)):
            raise UsageError(f"modulestore database {self.modulestore_db!r} is not a valid database name; "
                             "check --modulestore-db")
        if self.multipart_bytes < 5 * 1024 * 1024:
            raise UsageError("multipart_bytes must be at least 5 MiB, S3's smallest part")
        if not isinstance(self.max_reads_per_second, int) or self.max_reads_per_second < 0:
            raise UsageError("max_reads_per_second must be a whole number, 0 for no cap")
        if bool(self.aws_access_key_id) != bool(self.aws_secret_access_key):
            missing = "ETL_AWS_SECRET_ACCESS_KEY" if self.aws_access_key_id else "ETL_AWS_ACCESS_KEY_ID"
            raise UsageError(f"the tool's AWS credentials are incomplete: {missing} is missing; set both "
                             "ETL_AWS_ACCESS_KEY_ID and ETL_AWS_SECRET_ACCESS_KEY, or ETL_AWS_PROFILE, or neither")
        if self.aws_profile and self.aws_access_key_id:
            raise UsageError("ETL_AWS_PROFILE and ETL_AWS_ACCESS_KEY_ID are both set: give the tool one identity")
        redact.register(self.aws_secret_access_key)
        redact.register(self.aws_session_token)
        self._client_lock = threading.Lock()
        self._pool = None
        self._cached = {}
        self._lease_client = None
        self._guarded = None  # the client the lease guard was installed on

    def cached(self, name, build):
        """Return this Config's one ``name`` object (a limiter, a cache), calling ``build()`` the first time.

        The layers that connect (the contentstore's reads, for one) keep their
        per-Config state here, so that ``after_fork`` drops it with the rest.
        """
        with self._client_lock:
            if name not in self._cached:
                self._cached[name] = build()
            return self._cached[name]

    @property
    def s3(self):
        """Return the shared boto3 S3 client, building it on first use."""
        with self._client_lock:
            if self.s3_client is None:
                self.s3_client = make_s3_client(self)
                self._guarded = self.s3_client
            if self._guarded is not self.s3_client:  # an injected client: check it, guard it
                self._guarded = install_guard(check_injected(self.s3_client))
            return self.s3_client

    @property
    def lease_s3(self):
        """Return the heartbeat's own S3 client: short timeouts and few retries, its own connections.

        A heartbeat must never wait behind the course's requests in one pool, nor
        spend its lease in retries: it either renews quickly or lets the runner
        find out, through its deadline, that it can no longer be sure of its lease.
        """
        with self._client_lock:
            if self._lease_client is None:
                self._lease_client = make_s3_client(self, heartbeat=True)
            return self._lease_client

    def lease_margin(self):
        """Return the seconds before its lease ends at which a runner stops writing.

        A write sent just before that can take up to a connect and a read timeout
        to land, and must land while the lease still stands.
        """
        return min(CONNECT_TIMEOUT + READ_TIMEOUT, self.lease_seconds / 3)

    @property
    def s3_pool(self):
        """Return the one bounded thread pool that runs this Config's S3 requests in parallel.

        Every course shares it, however many run at once, so ``s3_concurrency``
        bounds the requests in flight and matches the client's connection pool.
        """
        with self._client_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.s3_concurrency, thread_name_prefix="etl-s3")
            return self._pool

    def after_fork(self):
        """Drop the S3 client, the thread pool and the MongoDB connection a parent process made.

        Sockets and threads do not survive a fork (Celery's prefork pool forks
        its children from the process that read the configuration): each child
        builds its own on first use.
        """
        self._client_lock = threading.Lock()
        self.s3_client, self._pool, self._lease_client, self._cached = None, None, None, {}
        if self.reconnect is not None:
            self.contentstore = self.reconnect()

    def require_contentstore(self):
        """Return the contentstore Database, or refuse when none is configured."""
        if self.contentstore is None:
            raise UsageError("no contentstore configured; set --mongo-uri or ETL_MONGO_URI")
        return self.contentstore


def manifest_dir(given=None, environ=None):
    """Return the folder for local manifest copies: ``given`` if set, else ETL_MANIFEST_DIR, else manifests/.

    '' (from either) keeps no local copies.
    """
    environ = os.environ if environ is None else environ
    if given is not None:
        return given
    return environ.get("ETL_MANIFEST_DIR", Config.manifest_dir)


def config_from_env(overrides=None, environ=None, **settings):
    """Build a Config from ``ETL_*`` variables; a non-None override wins over the environment."""
    environ = os.environ if environ is None else environ
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    values = {name: overrides.get(name, environ.get(var)) for name, var in {**ENV, **IDENTITY}.items()}
    if not values["bucket"]:
        raise UsageError("no bucket given; set --bucket or ETL_BUCKET")
    mongo_uri = values.pop("mongo_uri")
    mongo_db = values.pop("mongo_db") or "edxapp"
    if not _DATABASE.match(str(mongo_db)):
        raise UsageError(f"database {mongo_db!r} is not a valid database name; check --mongo-db or ETL_MONGO_DB")
    redact.register_environment(environ)
    if mongo_uri:
        redact.register_uri(mongo_uri)
    contentstore = None
    if mongo_uri:
        import pymongo

        timeout = {} if "serverselectiontimeoutms" in mongo_uri.lower() else {"serverSelectionTimeoutMS": 15000}

        def connect():
            return pymongo.MongoClient(mongo_uri, appname="transcript-etl", **timeout)[mongo_db]

        try:
            contentstore = connect()
        except Exception as exc:  # pymongo names the URI problem; never echo the URI itself
            hint = ("; a user name or password holding @, :, / or % must be percent-encoded (Python: "
                    "urllib.parse.quote_plus(password))" if type(exc).__name__ == "InvalidURI" else "")
            raise UsageError(f"cannot use MongoDB URI {redact.uri(mongo_uri)}: "
                             f"{type(exc).__name__}{hint}; check --mongo-uri or ETL_MONGO_URI") from None
        settings.setdefault("contentstore_label", redact.uri(mongo_uri))
        settings.setdefault("reconnect", connect)
    known = {f.name for f in fields(Config)}
    kwargs = {k: v for k, v in values.items() if v}
    settings["manifest_dir"] = manifest_dir(settings.get("manifest_dir"), environ)
    kwargs.update({k: v for k, v in settings.items() if k in known and v is not None})
    return Config(contentstore=contentstore, **kwargs)
