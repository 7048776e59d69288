"""Promote one staged course at a given instant: python -m tests.children.promote ENDPOINT BUCKET ROOT COURSE START.

Prints one JSON line: {"outcome": "won"} or {"outcome": ErrorClass, "message": ...}.
"""

import json
import sys
import time

import mongomock
import mongomock.gridfs

import etl
from tests.batch import build_course

if __name__ == "__main__":
    endpoint, bucket, root, course, start = sys.argv[1:6]
    mongomock.gridfs.enable_gridfs_integration()
    db = mongomock.MongoClient()["edxapp"]
    build_course(db, course, n=3)
    cfg = etl.Config(bucket=bucket, s3_endpoint_url=endpoint, contentstore=db, manifest_dir=None, progress=False,
                     s3_concurrency=4, staging_prefix=f"{root}/staging", live_prefix=f"{root}/live",
                     state_prefix=f"{root}/state")
    cfg.s3.head_bucket(Bucket=bucket)  # connect before the start line, so every runner starts together
    time.sleep(max(0.0, float(start) - time.time()))
    try:
        etl.promote(cfg, course)
        print(json.dumps({"outcome": "won"}))
    except etl.EtlError as err:
        print(json.dumps({"outcome": type(err).__name__, "message": str(err)}))
