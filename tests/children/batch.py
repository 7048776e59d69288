"""Run one migrate batch in its own process: python -m tests.children.batch ENDPOINT BUCKET N WORKERS.

With ETL_FAULT_AT and ETL_FAULT_ACTION=kill in the environment, the fault hook
kills it at that S3 call or contentstore query (``tests/faults.py``).
"""

import json
import sys

import mongomock
import mongomock.gridfs

import etl
import etl.store.probe
from tests import faults
from tests.batch import build_batch

if __name__ == "__main__":
    endpoint, bucket, n, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    mongomock.gridfs.enable_gridfs_integration()
    db = mongomock.MongoClient()["edxapp"]
    ids = build_batch(db, n)
    cfg = etl.Config(bucket=bucket, s3_endpoint_url=endpoint, contentstore=db, manifest_dir=None,
                     progress=False, s3_concurrency=4)
    etl.store.probe.probe(cfg)
    faults.install(cfg)
    faults.arm_from_env()
    summary = etl.migrate(cfg, ids, workers=workers)
    print(json.dumps({k: v for k, v in summary.to_dict().items() if k != "rows"}))
    print(json.dumps({r["course_id"]: r["outcome"] for r in summary.to_dict()["rows"]}))
