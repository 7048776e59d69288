"""Run the whole migration on a sample course against a local S3 endpoint: nothing real is touched.

Starts moto's S3 server on a free loopback port, loads a sample course into an
in-process contentstore (mongomock), then runs extract, promote and verify,
shows a second promote being refused, and prints the status table and the keys.
"""

import logging
import os

from etl import extract, promote, verify
from etl.demo.sample import DEMO_COURSE, load_demo_course
from etl.model.config import Config
from etl.model.errors import AlreadyPromoted
from etl.protocol.marker import committed
from etl.review.views import status


def start_s3():
    """Start moto's S3 server on a free loopback port; return (server, endpoint URL)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise SystemExit("the demo needs the demo extras: pip install -e '.[demo]'") from None
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "demo")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def demo_contentstore():
    """Return an in-process contentstore holding the sample course."""
    import mongomock
    import mongomock.gridfs

    mongomock.gridfs.enable_gridfs_integration()
    db = mongomock.MongoClient()["edxapp"]
    load_demo_course(db)
    return db


def run():
    """Run the demo and print what happened and where the files went."""
    import tempfile

    server, endpoint = start_s3()
    local = tempfile.mkdtemp(prefix="etl-demo-")  # nothing real is touched: not even ./manifests/
    try:
        cfg = Config(bucket="demo-transcripts", s3_endpoint_url=endpoint, contentstore=demo_contentstore(),
                     manifest_dir=local)
        cfg.s3.create_bucket(Bucket=cfg.bucket)
        print(f"local S3 endpoint {endpoint}, bucket {cfg.bucket}; sample course {DEMO_COURSE}\n")
        e = extract(cfg, DEMO_COURSE)
        print(f"extract: staged {e.transcripts} transcripts ({e.bytes} bytes), {e.parse_problems} parse problems "
              f"flagged, run {e.run_id}")
        p = promote(cfg, DEMO_COURSE)
        print(f"promote: {p.transcripts} transcripts live, commit marker {p.marker_key}")
        v = verify(cfg, DEMO_COURSE)
        print(f"verify:  {'ok' if v.ok else 'NOT READY'} (contentstore {v.contentstore_count}, live {v.live_count}, "
              f"marker {v.marker_count})")
        try:
            promote(cfg, DEMO_COURSE)
        except AlreadyPromoted as refusal:
            print(f"promote again: refused, as it must be: {refusal}")
        print("\nstatus table:")
        print(status(cfg).fillna("").to_string(index=False))
        print("\nobjects in s3://demo-transcripts:")
        for page in cfg.s3.get_paginator("list_objects_v2").paginate(Bucket=cfg.bucket):
            for obj in page.get("Contents", []):
                print(f"  {obj['Size']:>8}  {obj['Key']}")
        print(f"\nlocal manifest copy, in a temporary folder: {e.local_manifest}")
        epoch = committed(cfg, DEMO_COURSE)["epoch"]
        print(f"(the live copies are under e{epoch}: extract staged epoch e{epoch - 1}, and promote's own claim "
              "took the next epoch, as every claim does)")
        if not v.ok:
            raise SystemExit(5)
    finally:
        server.stop()
