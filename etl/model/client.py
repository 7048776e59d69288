"""Build the boto3 S3 clients every layer sends through, with the lease guard consulted at every request.

A runner that can no longer be sure of its lease must not send one more write,
nor a retry of one: ``guarded`` names the check for a block (its threads
included), and every client built here calls it before each attempt of a write.
"""

import base64
import contextvars
import hashlib
import threading
from contextlib import contextmanager
from datetime import datetime

from botocore.utils import parse_timestamp

from etl.model.errors import UsageError


def content_md5(data):
    """Return the base64 Content-MD5 header value for ``data``."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _timestamp(value):
    """Parse S3's ISO 8601 timestamps natively, and anything else the way botocore does.

    botocore's default goes through dateutil, about 0.3 ms a key: most of the
    client's time in listing a large course.
    """
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return parse_timestamp(value)


def check_injected(client):
    """Refuse an injected boto3 client that would send what the tool does not: botocore's default checksums.

    botocore's default (``request_checksum_calculation="when_supported"``) frames
    bodies as aws-chunked with a trailing CRC, which some S3-compatible stores
    store inside the object; the tool sends Content-MD5 itself.
    """
    calculation = getattr(client.meta.config, "request_checksum_calculation", None)
    if calculation not in (None, "when_required"):
        raise UsageError(f"the s3_client given to Config sends default checksums (request_checksum_calculation="
                         f"{calculation!r}), which some stores keep inside the objects; build it with "
                         "etl.model.config.make_s3_client, or pass botocore Config(request_checksum_calculation="
                         "'when_required', response_checksum_validation='when_required')")
    return client


CONNECT_TIMEOUT, READ_TIMEOUT = 10, 60
HEARTBEAT_TIMEOUT, HEARTBEAT_ATTEMPTS = 5, 2


def make_s3_client(cfg, heartbeat=False):
    """Build a boto3 S3 client with retries and a pool sized to the concurrency (or the heartbeat's client).

    Every write the main client sends consults the lease guard first (``install_guard``).
    """
    import boto3
    import botocore.exceptions
    import botocore.session
    from botocore.config import Config as BotoConfig

    boto_cfg = BotoConfig(
        retries={"mode": "standard", "max_attempts": HEARTBEAT_ATTEMPTS if heartbeat else cfg.retry_attempts},
        max_pool_connections=4 if heartbeat else cfg.s3_concurrency + 16,  # the pool's, plus course workers' own
        connect_timeout=HEARTBEAT_TIMEOUT if heartbeat else CONNECT_TIMEOUT,
        read_timeout=HEARTBEAT_TIMEOUT if heartbeat else READ_TIMEOUT,
        # Path-style works with every S3-compatible endpoint operators use (MinIO, Ceph).
        s3={"addressing_style": "path"} if cfg.s3_endpoint_url else {},
        parameter_validation=False,  # every request's parameters are built by the tool, not typed by a user
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    keys = {"aws_access_key_id": cfg.aws_access_key_id, "aws_secret_access_key": cfg.aws_secret_access_key,
            "aws_session_token": cfg.aws_session_token} if cfg.aws_access_key_id else {}
    with _session_lock:  # one session per profile and process: it loads the service model once, not per client
        if cfg.aws_profile not in _sessions:
            session = botocore.session.get_session()
            session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
            if cfg.aws_profile:
                session.set_config_variable("profile", cfg.aws_profile)
            _sessions[cfg.aws_profile] = boto3.session.Session(botocore_session=session)
        try:
            client = _sessions[cfg.aws_profile].client("s3", endpoint_url=cfg.s3_endpoint_url,
                                                       region_name=cfg.region_name, config=boto_cfg, **keys)
        except botocore.exceptions.ProfileNotFound:
            del _sessions[cfg.aws_profile]
            raise UsageError(f"ETL_AWS_PROFILE names profile {cfg.aws_profile!r}, which no AWS config or credentials "
                             "file defines; check the name, or set ETL_AWS_ACCESS_KEY_ID and "
                             "ETL_AWS_SECRET_ACCESS_KEY instead") from None
    return client if heartbeat else install_guard(client)


_sessions, _session_lock = {}, threading.Lock()


_guard = contextvars.ContextVar("etl_lease_guard", default=None)
WRITES = ("PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload", "UploadPart",
          "CompleteMultipartUpload")


@contextmanager
def guarded(check):
    """Call ``check()`` before every attempt of every write sent from this block, its threads included.

    ``check`` raises when the runner can no longer be sure it holds its course:
    the write, or the retry, is then never sent (``install_guard``).
    """
    token = _guard.set(check)
    try:
        yield
    finally:
        _guard.reset(token)


@contextmanager
def unguarded():
    """Send the block's writes whatever the lease: only for deletes of the runner's own epoch."""
    token = _guard.set(None)
    try:
        yield
    finally:
        _guard.reset(token)


def _check_guard(**_):
    check = _guard.get()
    if check is not None:
        check()


def install_guard(client):
    """Make ``client`` consult the lease guard before sending any attempt of a write (retries included).

    It also gives every DeleteObjects its Content-MD5 (``add_content_md5``).
    """
    for operation in WRITES:
        client.meta.events.register(f"before-send.s3.{operation}", _check_guard, unique_id=f"etl-guard-{operation}")
    client.meta.events.register("before-sign.s3.DeleteObjects", add_content_md5, unique_id="etl-delete-md5")
    return client


def add_content_md5(request, **_):
    """Give a DeleteObjects request its Content-MD5, which MinIO and other stores require (botocore sends a CRC32)."""
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    request.headers["Content-MD5"] = content_md5(body)
