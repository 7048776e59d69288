"""Talk to S3: conditional writes, listings, deletes and copies, with one-line errors.

Retries are botocore's (standard mode, set in ``config.make_s3_client``); this
module only turns what is left into ``StorageError`` or a precondition answer.
Every object the tool writes carries ``TOOL_METADATA`` plus its run id and course,
which is how promote and rollback tell their own objects from anyone else's.
"""

import base64
import hashlib
import json
import secrets
from contextlib import contextmanager
from urllib.parse import unquote

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from etl.model import logs
from etl.model.client import content_md5
from etl.model.errors import StorageError
from etl.model.lease import s3_age, s3_now
from etl.store.pool import run_all
from etl.store.preflight import no_credentials, partial_credentials
from etl.store.probe import known


TOOL = "openedx-transcript-etl"
META_TOOL, META_RUN, META_COURSE, META_MD5 = "etl-tool", "etl-run-id", "etl-course", "etl-md5"
META_WRITE = "etl-write"  # a nonce per conditional put: how a retried write recognises its own object


class PreconditionFailed(Exception):
    """An ``If-Match``/``If-None-Match`` write lost: someone else wrote first."""


def tool_metadata(course, run_id, md5=None):
    """Return the S3 user metadata that marks an object as written by this tool."""
    meta = {META_TOOL: TOOL, META_RUN: run_id, META_COURSE: course.segment}
    if md5:
        meta[META_MD5] = md5
    return meta


def written_by_tool(head, course):
    """Tell whether a head_object answer is an object this tool wrote for ``course``."""
    meta = (head or {}).get("Metadata", {})
    return meta.get(META_TOOL) == TOOL and meta.get(META_COURSE) == course.segment


def etag(value):
    """Return an ETag without its quotes."""
    return (value or "").strip('"')


def _code(err):
    return err.response.get("Error", {}).get("Code", "") if isinstance(err, ClientError) else ""


def _status(err):
    return err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(err, ClientError) else None


def gone(err):
    """Tell whether a StorageError was S3 saying the object does not exist (a missing bucket is not that)."""
    code = _code(err.__cause__)
    return code != "NoSuchBucket" and (_status(err.__cause__) == 404 or code in ("404", "NoSuchKey", "NotFound"))


@contextmanager
def storage(action, cfg, key="", bucket=None):
    """Turn botocore failures in the block into one-line StorageErrors naming the object."""
    bucket = bucket or cfg.bucket
    try:
        yield
    except ClientError as err:
        if _code(err) in ("PreconditionFailed", "ConditionalRequestConflict") or _status(err) == 412:
            raise PreconditionFailed(key) from err
        msg = err.response.get("Error", {}).get("Message", "")
        raise StorageError(f"S3 {action} s3://{bucket}/{key} failed: {_code(err) or _status(err)} {msg}; "
                           "check the bucket, credentials and endpoint, then re-run") from err
    except NoCredentialsError:
        raise no_credentials() from None
    except PartialCredentialsError as err:
        raise partial_credentials(err) from None
    except BotoCoreError as err:
        raise StorageError(f"S3 {action} s3://{bucket}/{key} failed after retries: "
                           f"{type(err).__name__}; check the network and endpoint, then re-run") from err


def put(cfg, key, data, *, metadata, if_none_match=False, if_match=None, content_type=None, client=None,
        checksum_sha256=None, nonce=None):
    """Put bytes with Content-MD5 (S3 verifies them) and an optional condition; return the ETag.

    A conditional put whose first attempt landed but whose answer was lost is
    retried by botocore and refused with 412, or its retries fail. Each
    conditional put carries a nonce of its own in its metadata (``etl-write``;
    ``nonce`` when the caller keeps it), so finding that nonce at the key means
    the write succeeded, whatever the store's ETags are (SSE-KMS ETags are not
    MD5s): a 412 or a failure is settled by reading the key back. A read-back
    that fails too raises the write's own error: its outcome is unknown.
    """
    nonce = nonce or (secrets.token_hex(8) if (if_none_match or if_match) else None)
    if nonce:
        metadata = dict(metadata, **{META_WRITE: nonce})
    args = dict(Bucket=cfg.bucket, Key=key, Body=data, ContentMD5=content_md5(data), Metadata=metadata)
    if checksum_sha256:  # a store that keeps checksums checks it on arrival and returns it later (verify)
        args.update(ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum_sha256)
    if content_type:
        args["ContentType"] = content_type
    if if_none_match:
        args["IfNoneMatch"] = "*"
    if if_match:
        args["IfMatch"] = if_match
    try:
        with storage("PutObject", cfg, key):
            tag = etag((client or cfg.s3).put_object(**args)["ETag"])
    except StorageError as err:
        if if_match and _status(err.__cause__) == 404:  # If-Match on a key that is gone: the same lost race
            raise PreconditionFailed(key) from err
        try:
            tag = _landed(cfg, key, nonce) if nonce else None
        except StorageError:
            tag = None
        if tag is None:
            raise err from err.__cause__
    except PreconditionFailed:
        tag = _landed(cfg, key, nonce)
        if tag is None:
            raise
    _check_landed(cfg, key, data, tag)  # whichever way it was learnt, the ETag must be the bytes sent
    return tag


def _landed(cfg, key, nonce):
    """Return the ETag at ``key`` when the object there carries this write's nonce, else None; errors propagate."""
    found = head(cfg, key)
    meta = (found or {}).get("Metadata", {})
    if found is None or meta.get(META_WRITE) != nonce:
        return None
    logs.event("warning", unquote(meta.get(META_COURSE, "")), "write_confirmed", meta.get(META_RUN), key=key,
               note="the write's answer was lost; reading the key back shows it landed")
    return etag(found["ETag"])


def _check_landed(cfg, key, data, tag):
    """Fail at once when the store's answer says it holds other bytes than were sent (a store with MD5 ETags)."""
    store = known(cfg)
    if store is not None and store.md5_etags and tag != hashlib.md5(data).hexdigest():
        raise StorageError(f"S3 PutObject s3://{cfg.bucket}/{key}: the store holds other bytes than were sent "
                           f"(its ETag {tag} is not their MD5 {hashlib.md5(data).hexdigest()}); the data was "
                           "damaged in transit; re-run, and check the network if it happens again")


def put_json(cfg, key, doc, *, metadata, if_none_match=False, if_match=None, client=None, nonce=None):
    """Put a JSON document conditionally; return its ETag."""
    data = json.dumps(doc, sort_keys=True, indent=1, default=str).encode()
    return put(cfg, key, data, metadata=metadata, if_none_match=if_none_match,
               if_match=if_match, content_type="application/json", client=client, nonce=nonce)


def fetch(cfg, key):
    """Return (bytes, etag, user metadata) of an object, or (None, None, None) when it does not exist."""
    return fetch_aged(cfg, key)[:3]


def fetch_aged(cfg, key):
    """Return (bytes, etag, user metadata, age by S3's clock in seconds), or four Nones when it does not exist."""
    try:
        with storage("GetObject", cfg, key):
            resp = cfg.s3.get_object(Bucket=cfg.bucket, Key=key)
            return resp["Body"].read(), etag(resp["ETag"]), resp.get("Metadata", {}), s3_age(resp)
    except StorageError as err:
        if gone(err):
            return None, None, None, None
        raise


def get(cfg, key):
    """Return (bytes, etag) of an object, or (None, None) when it does not exist."""
    return fetch(cfg, key)[:2]


def get_json(cfg, key):
    """Return (document, etag) of a JSON object, or (None, None) when absent."""
    data, tag = get(cfg, key)
    return (json.loads(data), tag) if data is not None else (None, None)


def md5_of(cfg, key):
    """Return the MD5 of an object's bytes, read back (None when it is gone): the truth where ETags are not MD5s."""
    digest = hashlib.md5()
    try:
        with storage("GetObject", cfg, key):
            body = cfg.s3.get_object(Bucket=cfg.bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(1024 * 1024), b""):
                digest.update(chunk)
    except StorageError as err:
        if gone(err):
            return None
        raise
    return digest.hexdigest()


def sha256_kept(cfg, key):
    """Return the SHA-256 (hex) a store kept for an object, or None when it keeps none (then read it back)."""
    with storage("HeadObject", cfg, key):
        found = cfg.s3.head_object(Bucket=cfg.bucket, Key=key, ChecksumMode="ENABLED").get("ChecksumSHA256")
    return base64.b64decode(found).hex() if found and "-" not in found else None


def head(cfg, key):
    """Return head_object's answer, or None when the object does not exist."""
    try:
        with storage("HeadObject", cfg, key):
            return cfg.s3.head_object(Bucket=cfg.bucket, Key=key)
    except StorageError as err:
        if gone(err):
            return None
        raise


def list_objects(cfg, prefix):
    """Yield {Key, ETag, Size, LastModified} for every object under ``prefix``, in key order."""
    paginator = cfg.s3.get_paginator("list_objects_v2")
    with storage("ListObjectsV2", cfg, prefix):
        for page in paginator.paginate(Bucket=cfg.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield {"Key": obj["Key"], "ETag": etag(obj["ETag"]), "Size": obj["Size"],
                       "LastModified": obj.get("LastModified")}


def list_aged(cfg, prefix):
    """Return every object under ``prefix`` as ``list_objects`` does, each with its ``Age`` by S3's clock.

    The age is the listing answer's ``Date`` minus the object's ``LastModified``,
    both S3's: the host's clock is never read. An answer without a ``Date``
    gives its objects no age (None).
    """
    paginator = cfg.s3.get_paginator("list_objects_v2")
    found = []
    with storage("ListObjectsV2", cfg, prefix):
        for page in paginator.paginate(Bucket=cfg.bucket, Prefix=prefix):
            now = s3_now(page)
            for obj in page.get("Contents", []):
                modified = obj.get("LastModified")
                age = (now - modified).total_seconds() if now is not None and modified is not None else None
                found.append({"Key": obj["Key"], "ETag": etag(obj["ETag"]), "Size": obj["Size"],
                              "LastModified": modified, "Age": age})
    return found


def delete_many(cfg, keys):
    """Delete keys in batches of 1,000; raise naming the first key S3 would not delete.

    The request carries Content-MD5 (``add_content_md5``); a store that still
    refuses a batch delete gets the keys one by one.
    """
    keys = list(keys)
    for start in range(0, len(keys), 1000):
        batch = [{"Key": k} for k in keys[start:start + 1000]]
        try:
            with storage("DeleteObjects", cfg, batch[0]["Key"]):
                resp = cfg.s3.delete_objects(Bucket=cfg.bucket, Delete={"Objects": batch, "Quiet": True})
        except StorageError as err:
            if _code(err.__cause__) not in ("MissingContentMD5", "InvalidRequest", "NotImplemented"):
                raise
            run_all(cfg, lambda item: _delete_one(cfg, item["Key"]), batch)
            continue
        if resp.get("Errors"):
            first = resp["Errors"][0]
            raise StorageError(f"S3 DeleteObjects s3://{cfg.bucket}/{first.get('Key')} failed: "
                               f"{first.get('Code')} ({len(resp['Errors'])} keys not deleted); re-run rollback")


def _delete_one(cfg, key):
    with storage("DeleteObject", cfg, key):
        cfg.s3.delete_object(Bucket=cfg.bucket, Key=key)


def delete_if_match(cfg, key, tag):
    """Delete one object, only if its ETag is still ``tag`` where the store honours that; return False if gone.

    A changed object raises PreconditionFailed: it is no longer what was
    checked. The condition is sent only to a store the probe proved honours it;
    no guarantee rests on it (the tool deletes only keys of epochs no other
    runner writes), it only keeps an object someone wrote over such a key by hand.
    """
    store = known(cfg)
    condition = {"IfMatch": f'"{tag}"'} if store is None or store.conditional_delete else {}
    try:
        with storage("DeleteObject", cfg, key):
            cfg.s3.delete_object(Bucket=cfg.bucket, Key=key, **condition)
    except StorageError as err:
        if _status(err.__cause__) == 404:
            return False
        raise
    return True


def copy(cfg, source, dest):
    """Copy an object server-side, keeping its metadata (run id included); return the new ETag."""
    with storage("CopyObject", cfg, dest):
        resp = cfg.s3.copy_object(Bucket=cfg.bucket, Key=dest, MetadataDirective="COPY",
                                  CopySource={"Bucket": cfg.bucket, "Key": source})
    return etag(resp["CopyObjectResult"]["ETag"])


class MultipartUpload:
    """Upload one large object in parts, each with Content-MD5; abort on any failure.

    Completion is conditional (``If-None-Match: *``), like every small put.
    ``etag`` is S3's multipart ETag, computed locally so reconcile can check it.
    """

    def __init__(self, cfg, key, *, metadata, content_type=None):
        self.cfg, self.key = cfg, key
        self.nonce = secrets.token_hex(8)  # recognises a completion that landed though its answer was lost
        args = dict(Bucket=cfg.bucket, Key=key, Metadata=dict(metadata, **{META_WRITE: self.nonce}))
        if content_type:
            args["ContentType"] = content_type
        with storage("CreateMultipartUpload", cfg, key):
            self.upload_id = cfg.s3.create_multipart_upload(**args)["UploadId"]
        self.parts, self._digests, self.completed = [], [], False

    def add(self, data):
        """Upload the next part."""
        number = len(self.parts) + 1
        with storage("UploadPart", self.cfg, self.key):
            resp = self.cfg.s3.upload_part(Bucket=self.cfg.bucket, Key=self.key, UploadId=self.upload_id,
                                           PartNumber=number, Body=data, ContentMD5=content_md5(data))
        self.parts.append({"ETag": resp["ETag"], "PartNumber": number})
        self._digests.append(hashlib.md5(data).digest())
        _check_landed(self.cfg, f"{self.key} (part {number})", data, etag(resp["ETag"]))

    @property
    def etag(self):
        return hashlib.md5(b"".join(self._digests)).hexdigest() + f"-{len(self._digests)}"

    def complete(self):
        """Complete the upload unless the key exists; return the ETag."""
        try:
            with storage("CompleteMultipartUpload", self.cfg, self.key):
                self.cfg.s3.complete_multipart_upload(
                    Bucket=self.cfg.bucket, Key=self.key, UploadId=self.upload_id,
                    MultipartUpload={"Parts": self.parts}, IfNoneMatch="*")
        except (PreconditionFailed, StorageError) as failure:
            try:
                found = head(self.cfg, self.key)  # a retried completion that had already landed
            except StorageError:
                raise failure from None  # the completion's own failure is the one to report
            if found is None or found.get("Metadata", {}).get(META_WRITE) != self.nonce:
                raise
        self.completed = True
        return self.etag

    def abort(self):
        """Abort the upload, so no parts are left behind; a completed one has none."""
        if self.completed:
            return
        with storage("AbortMultipartUpload", self.cfg, self.key):
            self.cfg.s3.abort_multipart_upload(Bucket=self.cfg.bucket, Key=self.key, UploadId=self.upload_id)
