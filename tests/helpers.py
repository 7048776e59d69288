"""Helpers shared by the tests: read S3 back, snapshot the contentstore."""

import copy
import hashlib

from etl import s3 as s3mod

def objects(cfg, prefix=""):
    """Return {key: bytes} for every object under ``prefix``."""
    return {o["Key"]: s3mod.get(cfg, o["Key"])[0] for o in s3mod.list_objects(cfg, prefix)}


def listing(cfg, prefix=""):
    """Return {key: etag} for every object under ``prefix``."""
    return {o["Key"]: o["ETag"] for o in s3mod.list_objects(cfg, prefix)}


def snapshot(db):
    """Return every document of fs.files and fs.chunks, to prove the tool never writes to them."""
    return {name: sorted((copy.deepcopy(d) for d in db[name].find({})), key=lambda d: repr(d.get("_id")))
            for name in ("fs.files", "fs.chunks")}


def run_cli(cfg, contentstore, capsys, local, *args):
    """Run the CLI in-process on the test's bucket and contentstore, quietly; return (code, stdout, stderr)."""
    from etl.cli import main

    argv = list(args) + ["--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url,
                         "--manifest-dir", str(local), "--quiet"]
    try:
        main(argv, contentstore=contentstore)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def md5(data):
    return hashlib.md5(data).hexdigest()
