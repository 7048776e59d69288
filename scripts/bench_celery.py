"""The Celery app the benchmark's workers run: the tool's own, with the benchmark's courses in each process.

Each pool process loads the same small courses (``bench.small_courses``) into
its own in-process contentstore, as the measuring process does for the thread pool.
"""

import os
import sys

from celery import signals

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from etl.batch import tasks  # noqa: E402
from etl.model.config import config_from_env  # noqa: E402

app = tasks.app


@signals.worker_process_init.connect
def load_contentstore(**_):
    from scripts.bench import contentstore, small_courses

    cfg = config_from_env(manifest_dir=None, progress=False,
                          s3_concurrency=int(os.environ.get("ETL_S3_CONCURRENCY", "16")))
    cfg.contentstore = contentstore()
    small_courses(cfg.contentstore, int(os.environ["ETL_BENCH_COURSES"]))
    tasks.configure(cfg)
