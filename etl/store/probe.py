"""Prove, before the first write, that the S3 store honours what the guarantees rest on; refuse one that does not.

Every guarantee rests on conditional writes. A store that silently ignores
``If-None-Match`` lets two runners both commit; one that ignores ``If-Match``
lets a runner that lost its lease commit over another's work. Such a store is
refused, with no override: the guarantees are the product. The probe also
learns what it can rely on for integrity: whether ETags are MD5s, whether the
store refuses bytes that match neither their ``Content-MD5`` nor their SHA-256,
whether it keeps SHA-256 checksums, whether it honours ``If-Match`` on DELETE,
whether the bucket is versioned and how it is encrypted. No guarantee rests on a
conditional DELETE (the commit key is only ever replaced by conditional PUTs):
where one is honoured it also keeps an object someone wrote over a tool key
between a check and a delete, and the tool sends it only there.

It runs once per endpoint and bucket in a process (the CLI, an API program,
each Celery worker process), before that process's first claim, in at most eleven
requests on a scratch key under the state prefix, and leaves nothing behind:
on a versioned bucket it deletes the versions it made by their ids.
"""

import base64
import hashlib
import secrets
import threading
from dataclasses import dataclass
from typing import Optional

from botocore.exceptions import BotoCoreError, ClientError

from etl.model.errors import StorageError, UsageError


_seen = {}
_lock = threading.Lock()
WRONG_ETAG = '"00000000000000000000000000000000"'


@dataclass(frozen=True)
class Store:
    """What a store was proved to do."""

    md5_etags: bool  # a plain put's ETag is the MD5 of its bytes
    checks_arrival: bool  # a put whose bytes match neither its Content-MD5 nor its SHA-256 is refused
    keeps_checksums: bool  # a put's SHA-256 checksum is kept and returned
    conditional_delete: bool  # DeleteObject with a wrong If-Match is refused
    versioned: bool
    encryption: Optional[str]  # the put answer's x-amz-server-side-encryption, if any

    def describe(self):
        """Return one line for the operator: what integrity checks rest on, on this store."""
        etags = "ETags are MD5s" if self.md5_etags else "ETags are opaque (not MD5s)"
        return (f"{etags}; damaged bytes {'refused' if self.checks_arrival else 'not refused'} on arrival; SHA-256 checksums "
                f"{'kept' if self.keeps_checksums else 'not kept'}; If-Match on DELETE "
                f"{'honoured' if self.conditional_delete else 'ignored'}; versioning {'on' if self.versioned else 'off'}; "
                f"encryption {self.encryption or 'none'}")


def _code(err):
    return err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else ""


def _status(err):
    return err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(err, ClientError) else None


def _where(cfg):
    return f"s3://{cfg.bucket}" + (f" at {cfg.s3_endpoint_url}" if cfg.s3_endpoint_url else "")


def _md5(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _refuse(cfg, what, why):
    return UsageError(f"the store {_where(cfg)} {what}: {why}; refusing to run on it, and nothing was written. "
                      "The tool needs conditional writes honoured as AWS S3 does (README, \"S3 stores\")")


def probe(cfg):
    """Return what the store of ``cfg`` was proved to do, probing it once per process; refuse a store that cannot hold the protocol."""
    key = (cfg.s3_endpoint_url, cfg.bucket)
    with _lock:
        if key in _seen:
            return _seen[key]
    store = _probe(cfg)
    with _lock:
        _seen[key] = store
    return store


def known(cfg):
    """Return what the probe found for ``cfg``'s store, or None if it has not run in this process."""
    with _lock:
        return _seen.get((cfg.s3_endpoint_url, cfg.bucket))


def _probe(cfg):
    client, bucket = cfg.s3, cfg.bucket
    scratch = f"{cfg.state_prefix}/probe/{secrets.token_hex(8)}"
    first, second = f"{scratch}/a", f"{scratch}/b"
    body = f"probe {scratch}".encode()
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    versions = []  # (key, version id) of every object version the probe made

    def put(k, data=body, **extra):
        args = dict(Bucket=bucket, Key=k, Body=data, ContentMD5=_md5(data))
        args.update(extra)
        resp = client.put_object(**args)
        versions.append((k, resp.get("VersionId")))
        return resp

    def expect_refused(what, why, call, refused=(412,)):
        try:
            call()
        except ClientError as err:
            if _status(err) in refused or _code(err) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return
            if _status(err) == 501:
                raise _refuse(cfg, f"answers 501 NotImplemented to {what}", why) from None
            raise
        raise _refuse(cfg, f"ignores {what}", why)

    try:
        try:
            made = put(first, IfNoneMatch="*", ChecksumAlgorithm="SHA256", ChecksumSHA256=sha)
        except ClientError as err:
            if _status(err) == 501:
                raise _refuse(cfg, "answers 501 NotImplemented to If-None-Match",
                              "it cannot keep two runners from both committing one course") from None
            raise
        expect_refused("If-None-Match", "two runners could both commit one course",
                       lambda: put(first, IfNoneMatch="*"))
        expect_refused("If-Match", "a runner that lost its lease could still commit over another's work",
                       lambda: put(first, IfMatch=WRONG_ETAG))
        expect_refused("If-Match on a missing key", "a runner could commit over a course another one rolled back",
                       lambda: put(second, IfMatch=WRONG_ETAG), refused=(412, 404))
        try:  # bytes that match neither their Content-MD5 nor their SHA-256
            put(second, data=body + b"!", ContentMD5=_md5(body), ChecksumAlgorithm="SHA256", ChecksumSHA256=sha)
            checks_arrival = False
        except ClientError as err:
            if _status(err) != 400:
                raise
            checks_arrival = True
        upload = client.create_multipart_upload(Bucket=bucket, Key=first)["UploadId"]
        try:
            part = client.upload_part(Bucket=bucket, Key=first, UploadId=upload, PartNumber=1, Body=body,
                                      ContentMD5=_md5(body))
            expect_refused("If-None-Match on CompleteMultipartUpload",
                           "a large transcript could be written over another run's",
                           lambda: versions.append((first, client.complete_multipart_upload(
                               Bucket=bucket, Key=first, UploadId=upload, IfNoneMatch="*",
                               MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]}).get("VersionId"))))
        finally:
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=first, UploadId=upload)
            except ClientError:
                pass  # completed (and refused above) or already gone
        etag = made["ETag"].strip('"')
        try:  # last: a store that ignores the condition deletes the scratch object
            gone = client.delete_object(Bucket=bucket, Key=first, IfMatch=WRONG_ETAG)
            versions.append((first, gone.get("VersionId")))
            conditional_delete = False
        except ClientError as err:
            if _status(err) not in (412, 501) and _code(err) not in ("PreconditionFailed", "NotImplemented"):
                raise
            conditional_delete = _status(err) == 412 or _code(err) == "PreconditionFailed"
        return Store(md5_etags=etag == hashlib.md5(body).hexdigest(), checks_arrival=checks_arrival,
                     conditional_delete=conditional_delete,
                     keeps_checksums=made.get("ChecksumSHA256") == sha, versioned=bool(made.get("VersionId")),
                     encryption=made.get("ServerSideEncryption"))
    except (ClientError, BotoCoreError) as err:
        if _status(err) in (401, 403):
            raise UsageError(f"bucket {_where(cfg)} is not writable under {cfg.state_prefix}/ ({_code(err)}); "
                             "check the IAM policy: s3:PutObject and s3:DeleteObject on the three prefixes, "
                             "s3:AbortMultipartUpload too") from None
        raise StorageError(f"the store probe on {_where(cfg)} failed: {_code(err) or type(err).__name__}; "
                           "check the bucket, credentials and endpoint, then re-run") from None
    finally:
        _clean(client, bucket, versions)


def _clean(client, bucket, versions):
    """Delete what the probe made, in one request: each version by its id on a versioned bucket, else each key."""
    objects = [dict(Key=k, **({"VersionId": v} if v else {})) for k, v in dict.fromkeys(versions)]
    if not objects:
        return
    try:
        client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    except (ClientError, BotoCoreError):
        pass  # a probe object left behind is the tool's own, under the state prefix
