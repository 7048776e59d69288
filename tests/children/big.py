"""Migrate one course with one big transcript, report peak memory: python -m tests.children.big ENDPOINT BUCKET MB."""

import gc
import json
import sys

import mongomock
import mongomock.gridfs

import etl
from etl.demo.sample import save_asset

def vm(field):
    """Return a /proc/self/status memory figure in kB."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))


if __name__ == "__main__":
    endpoint, bucket, megabytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    course = f"course-v1:Big+File{megabytes}+2026"
    mongomock.gridfs.enable_gridfs_integration()
    db = mongomock.MongoClient()["edxapp"]
    line = b"00:00:01,000 --> 00:00:02,000 a long, long lecture transcript line\n"
    big = line * (megabytes * 1024 * 1024 // len(line))
    save_asset(db, course, "huge-en.srt", big)
    del big
    cfg = etl.Config(bucket=bucket, s3_endpoint_url=endpoint, contentstore=db, manifest_dir=None, progress=False)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
        fh.write("5")
    before = vm("VmRSS")
    etl.extract(cfg, course)
    etl.promote(cfg, course)
    ok = etl.verify(cfg, course).ok
    print(json.dumps({"ok": ok, "rss_before_kb": before, "rss_after_kb": vm("VmHWM")}))
