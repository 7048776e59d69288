"""The Celery app the test workers run: the tool's own, plus a contentstore loaded in every worker process.

No MongoDB server exists here, so each pool process loads the same deterministic
courses into its own mongomock (the tool only reads the contentstore, so
identical copies stand in for one shared database), or, with ETL_TEST_MONGO_URI
set, reads that real MongoDB. Started as ``celery -A tests.celery_app worker``.

With ETL_TEST_PAUSE_COURSE set, the process that stages that course writes its
pid to ETL_TEST_PAUSE_FILE and stops there, for the test to kill it mid-course.
"""

import os
import time

from celery import signals

from etl.batch import tasks
from etl.model.config import config_from_env
from etl.model.layout import parse_course_id
from tests.batch import build_batch, build_course

app = tasks.app


@signals.worker_process_init.connect
def load_contentstore(**_):
    cfg = config_from_env(manifest_dir=None, progress=False)
    if not os.environ.get("ETL_TEST_MONGO_URI"):
        import mongomock
        import mongomock.gridfs

        mongomock.gridfs.enable_gridfs_integration()
        db = mongomock.MongoClient()["edxapp"]
        build_batch(db, int(os.environ.get("ETL_TEST_BATCH", "0")))
        for course_id in filter(None, os.environ.get("ETL_TEST_COURSES", "").split(",")):
            build_course(db, course_id, n=3)
        cfg.contentstore = db
    pause = os.environ.get("ETL_TEST_PAUSE_COURSE")
    if pause and not os.path.exists(os.environ["ETL_TEST_PAUSE_FILE"]):  # only the first process to get there
        segment = parse_course_id(pause).segment

        def hold(params, model, **_):
            key = params.get("Key", "")
            if f"/{segment}/" in key and "/transcripts/" in key and not os.path.exists(os.environ["ETL_TEST_PAUSE_FILE"]):
                with open(os.environ["ETL_TEST_PAUSE_FILE"], "a") as fh:
                    fh.write(f"{os.getpid()}\n")
                time.sleep(3600)  # until the test kills this process

        cfg.s3.meta.events.register("before-parameter-build.s3.PutObject", hold)
    tasks.configure(cfg)
