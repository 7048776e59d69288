"""Migrate one course, to be killed by the fault hook: python -m tests.children.crash ENDPOINT BUCKET ROOT COURSE [HOW].

HOW is ``verbs`` (extract, then promote: the default) or ``migrate`` (one claim
from extract to commit). ETL_FAULT_AT and ETL_FAULT_ACTION=kill in the
environment choose the call that kills it.
"""

import sys

import mongomock
import mongomock.gridfs

import etl
import etl.store.probe
from tests import faults
from tests.batch import build_course

if __name__ == "__main__":
    endpoint, bucket, root, course = sys.argv[1:5]
    how = sys.argv[5] if len(sys.argv) > 5 else "verbs"
    mongomock.gridfs.enable_gridfs_integration()
    db = mongomock.MongoClient()["edxapp"]
    build_course(db, course)
    cfg = etl.Config(bucket=bucket, s3_endpoint_url=endpoint, contentstore=db, manifest_dir=None, progress=False,
                     s3_concurrency=4, staging_prefix=f"{root}/staging", live_prefix=f"{root}/live",
                     state_prefix=f"{root}/state")
    etl.store.probe.probe(cfg)  # the store probe runs once per process; the parent's count of calls leaves it out
    faults.install(cfg)
    faults.arm_from_env()
    if how == "migrate":
        etl.migrate(cfg, [course], workers=1, retries=0)
    else:
        etl.extract(cfg, course)
        etl.promote(cfg, course)
