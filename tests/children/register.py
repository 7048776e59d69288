"""Register (or undo) the openedx demo course in a process of its own, to be killed by SIGKILL at a chosen point.

python -m tests.children.register ENDPOINT BUCKET VAL_BUCKET DATABASE ACTION [KILL_AT]

Django runs on a sqlite file (``DATABASE``) that outlives the process, edx-val's
storage is ``VAL_BUCKET`` on the same S3 endpoint, and the contentstore is a
mongomock filled with the demo course as Studio imports it, the same in every
process. ACTION is ``register`` or ``undo``; with KILL_AT (``uploaded`` or
``before database commit``) a register kills itself there, as SIGKILL would:
no cleanup, no rollback but the database's own. It prints what it did.
"""

import os
import signal
import sys

import mongomock
import mongomock.gridfs

import etl
from tests.edx import DATA, DEMO, DEMO_ID, import_static, load_videos, setup_django

if __name__ == "__main__":
    endpoint, bucket, val_bucket, database, action = sys.argv[1:6]
    kill_at = sys.argv[6] if len(sys.argv) > 6 else None
    setup_django(database, endpoint, val_bucket)
    from edxval.models import Video

    from etl.demo.sample import register_course
    from etl.openedx import register, undo

    mongomock.gridfs.enable_gridfs_integration()
    db = mongomock.MongoClient()["edxapp"]
    import_static(db, DEMO, DEMO_ID)
    register_course(db, DEMO_ID)
    blocks = load_videos(db, os.path.join(DATA, DEMO), DEMO_ID)
    for fields in blocks.values():
        if fields.get("edx_video_id"):
            Video.objects.get_or_create(edx_video_id=fields["edx_video_id"], defaults={
                "client_video_id": "External Video", "duration": 0, "status": "external"})
    cfg = etl.Config(bucket=bucket, s3_endpoint_url=endpoint, contentstore=db, manifest_dir=None, progress=False)
    if etl.committed(cfg, DEMO_ID) is None:
        etl.migrate(cfg, [DEMO_ID])
        etl.handoff(cfg, DEMO_ID, english_from_transcripts=True)

    def hook(point):
        if point == kill_at:
            print(f"killed at {point}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    if action == "undo":
        result = undo.plan_undo(cfg, DEMO_ID)
        undo.commit_undo(cfg, result)
    else:
        result = register.plan(cfg, DEMO_ID)
        register.commit(cfg, result, hook=hook)
    print(f"{action}: {len(result.act)} acted, {sum(len(o.names) for o in result.orphans)} orphaned copies deleted",
          flush=True)
