"""Check, once and before any course, that the bucket and the contentstore are what the operator meant.

Each problem is a ``UsageError`` (exit 2) naming what to fix: a missing bucket,
absent or refused credentials, an endpoint that does not answer, a bucket the
credentials cannot write, a store that does not honour conditional writes, an
unreachable MongoDB, or a database without a contentstore. Nothing about any course is read or written before this passes.
"""

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, PartialCredentialsError

from etl.model import logs, redact
from etl.model.errors import UsageError
from etl.store.probe import probe


def preflight(cfg, write=False, contentstore=False):
    """Check the bucket (and, with ``write``, that the store holds the protocol: ``etl.store.probe``) and the contentstore."""
    check_bucket(cfg)
    if write:
        store = probe(cfg)  # writes and deletes its own scratch objects: the writability check too
        if store.versioned:
            logs.event("warning", "*", "versioned_bucket", bucket=cfg.bucket,
                       note="deleted objects stay as noncurrent versions; see rollback --purge-versions")
    if contentstore:
        check_contentstore(cfg)


def _where(cfg):
    return f"s3://{cfg.bucket}" + (f" at {cfg.s3_endpoint_url}" if cfg.s3_endpoint_url else "")


def check_bucket(cfg):
    """Refuse a bucket that does not exist or that the credentials may not use."""
    try:
        cfg.s3.head_bucket(Bucket=cfg.bucket)
    except NoCredentialsError:
        raise no_credentials() from None
    except PartialCredentialsError as err:
        raise partial_credentials(err) from None
    except ClientError as err:
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            raise UsageError(f"bucket {_where(cfg)} does not exist; check --bucket (ETL_BUCKET) and "
                             "--s3-endpoint-url, or create the bucket first") from None
        if status in (401, 403):
            raise _denied(cfg) from None
        raise UsageError(f"bucket {_where(cfg)} answered {status}; check --bucket and --s3-endpoint-url") from None
    except BotoCoreError as err:
        raise UsageError(f"cannot reach the S3 endpoint for {_where(cfg)}: {type(err).__name__}; check "
                         "--s3-endpoint-url (ETL_S3_ENDPOINT_URL) and the network") from None


BAD_CREDENTIALS = {
    "InvalidAccessKeyId": "the access key id is not known to the store",
    "SignatureDoesNotMatch": "the secret access key does not match the access key id",
    "ExpiredToken": "the session token has expired",
    "InvalidToken": "the session token is not valid",
}


def _denied(cfg):
    """Tell bad credentials from a missing permission: a HEAD answers 403 alone, a listing names the error code."""
    try:
        cfg.s3.list_objects_v2(Bucket=cfg.bucket, MaxKeys=1, Prefix=f"{cfg.state_prefix}/")
        code = "AccessDenied"  # the listing is allowed where the HEAD was not: still a permission
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "AccessDenied")
    except BotoCoreError:
        code = "AccessDenied"
    if code in BAD_CREDENTIALS:
        return UsageError(f"the AWS credentials were refused by {_where(cfg)} ({code}: {BAD_CREDENTIALS[code]}); "
                          "check the tool's identity: ETL_AWS_ACCESS_KEY_ID and ETL_AWS_SECRET_ACCESS_KEY (or "
                          "ETL_AWS_PROFILE), else AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE); "
                          "retrying will not help")
    return UsageError(f"access to bucket {_where(cfg)} was denied ({code}): the credentials are valid but lack a "
                      "permission; check their IAM policy (s3:ListBucket on the bucket, and the object actions "
                      "on the three prefixes)")


def check_contentstore(cfg):
    """Refuse a contentstore that does not answer, or a database that has no ``fs.files``."""
    db = cfg.require_contentstore()
    where = f"database {db.name}" + (f" at {cfg.contentstore_label}" if cfg.contentstore_label else "")
    try:
        names = db.list_collection_names()
    except Exception as exc:  # pymongo's errors: server selection, authentication, network
        first = (str(exc).splitlines() or [""])[0][:200]
        raise UsageError(redact.scrub(f"cannot read the contentstore, {where}: {type(exc).__name__}: {first}; "
                                      "check --mongo-uri (ETL_MONGO_URI), the credentials and the network")) from None
    if "fs.files" not in names:
        raise UsageError(f"{where} has no contentstore (no fs.files collection); check --mongo-db (ETL_MONGO_DB)")


def partial_credentials(err):
    """Return the error for credentials that are only half set: which one is missing, and where it was looked for."""
    found = getattr(err, "kwargs", {})
    missing = {"secret_key": "AWS_SECRET_ACCESS_KEY", "access_key": "AWS_ACCESS_KEY_ID"}.get(
        found.get("cred_var"), found.get("cred_var") or "a credential")
    source = {"env": "the environment"}.get(found.get("provider"), found.get("provider") or "the environment")
    return UsageError(f"the AWS credentials are incomplete: {missing} is missing ({source} has only part of "
                      "them); set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or unset both "
                      "to use an instance or task role")


def no_credentials():
    """Return the error for a machine with no AWS credentials at all."""
    return UsageError("no AWS credentials found; give the tool its own identity with ETL_AWS_ACCESS_KEY_ID and "
                      "ETL_AWS_SECRET_ACCESS_KEY (or ETL_AWS_PROFILE), or set AWS_ACCESS_KEY_ID and "
                      "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or run where an instance or task role provides them")
