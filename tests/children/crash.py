"""Extract and promote one course, to be killed by the fault hook: python -m tests.children.crash ENDPOINT BUCKET ROOT COURSE.

ETL_FAULT_AT and ETL_FAULT_ACTION=kill in the environment choose the call that kills it.
"""

import sys

import mongomock
import mongomock.gridfs

import etl
from tests import faults
from tests.batch import build_course

if __name__ == "__main__":
    endpoint, bucket, root, course = sys.argv[1:5]
    mongomock.gridfs.enable_gridfs_integration()
    db = mongomock.MongoClient()["edxapp"]
    build_course(db, course)
    cfg = etl.Config(bucket=bucket, s3_endpoint_url=endpoint, contentstore=db, manifest_dir=None, progress=False,
                     s3_concurrency=4, staging_prefix=f"{root}/staging", live_prefix=f"{root}/live",
                     state_prefix=f"{root}/state")
    faults.install(cfg)
    faults.arm_from_env()
    etl.extract(cfg, course)
    etl.promote(cfg, course)
