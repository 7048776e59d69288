"""Run the command line against a built-in contentstore: python -m tests.children.cli N WIDE ARGV...

The first N courses of ``tests.batch``, and with WIDE > 0 the course
``course-v1:Wide+Course+1`` of WIDE transcripts, are loaded into an in-process
mongomock, as in every other process of the suite; the rest is the command
line, as an operator types it.
"""

import sys

import mongomock
import mongomock.gridfs

from etl.cli.main import main
from tests.batch import build_batch, build_course

WIDE = "course-v1:Wide+Course+1"

if __name__ == "__main__":
    n, wide, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    mongomock.gridfs.enable_gridfs_integration()
    db = mongomock.MongoClient()["edxapp"]
    build_batch(db, n)
    if wide:
        build_course(db, WIDE, n=wide)
    main(argv, contentstore=db)
