"""Every (status record × commit key) pair converges on one re-run of ``migrate``.

docs/protocol.md has the table this test walks: for each state the record can
be left in (with its lease expired, as after a crash) and each thing the commit
key can hold, one ``migrate`` re-run ends the course committed and verified,
or refuses it with exit 2 naming what to do, and nothing is ever stuck.
"""

import json

import pytest

import etl
from etl.model.layout import Layout, parse_course_id
from etl.store import s3
from tests.batch import build_course
from tests.helpers import assert_finished_by_rerun, listing
from tests.test_upgrade import as_0_3_0

COURSE = "course-v1:Table+Cells+2026"
RECORDS = [None, "extracting", "staged", "promoting", "promoted", "failed", "rolling_back", "rolled_back", "in_doubt"]
KEYS = ["nothing", "own fence", "earlier fence", "later fence", "release", "commit", "legacy commit", "foreign"]


def put_marker(cfg, course, doc, status):
    """Put a document at the commit key as the tool writes one."""
    meta = dict(s3.tool_metadata(course, doc.get("run_id", "20260101T000000Z-0000cafe")), **{"etl-marker": status})
    cfg.s3.put_object(Bucket=cfg.bucket, Key=Layout(cfg, course).marker, Metadata=meta,
                      Body=json.dumps(dict(doc, format=3, status=status, course_id=str(course))).encode())


def leave(cfg, db, record_state, key):
    """Leave the course with its record in ``record_state`` (epoch 2) and ``key`` at its commit key."""
    course = parse_course_id(COURSE)
    layout = Layout(cfg, course)
    build_course(db, COURSE, n=3)
    if key in ("commit", "legacy commit"):
        etl.migrate(cfg, [COURSE], workers=1, retries=0)
        if key == "legacy commit":
            as_0_3_0(cfg, COURSE)
    else:
        etl.extract(cfg, COURSE)  # staged at epoch 1, its fence at the commit key
    record = json.loads(cfg.s3.get_object(Bucket=cfg.bucket, Key=layout.record)["Body"].read())
    if record_state is None:
        cfg.s3.delete_object(Bucket=cfg.bucket, Key=layout.record)
        for k in listing(cfg, layout.staging_root):  # every run writes its record first: no record, no staging
            cfg.s3.delete_object(Bucket=cfg.bucket, Key=k)
    else:
        record.update(state=record_state, epoch=2 if key != "legacy commit" else None,
                      lease_seconds=300, lease_expires_at="2026-01-01T00:05:00.000Z")
        cfg.s3.put_object(Bucket=cfg.bucket, Key=layout.record, Body=json.dumps(record).encode(),
                          Metadata=s3.tool_metadata(course, record["run_id"]))
    run = {"run_id": record["run_id"]}
    if key == "nothing":
        cfg.s3.delete_object(Bucket=cfg.bucket, Key=layout.marker)
    elif key == "own fence":
        put_marker(cfg, course, dict(run, epoch=2), "fenced")
    elif key == "earlier fence":
        put_marker(cfg, course, dict(run, epoch=1), "fenced")
    elif key == "later fence":
        put_marker(cfg, course, dict(run, epoch=3), "fenced")
    elif key == "release":
        put_marker(cfg, course, dict(run, epoch=2, reason="failed"), "released")
    elif key == "foreign":
        cfg.s3.put_object(Bucket=cfg.bucket, Key=layout.marker, Body=b"<html>not ours</html>")
    return layout


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("record_state", RECORDS)
def test_one_migrate_re_run_converges_from_every_record_and_commit_key(make_cfg, contentstore, record_state, key):
    cfg = make_cfg(manifest_dir="")
    layout = leave(cfg, contentstore, record_state, key)
    rerun = make_cfg(manifest_dir="")
    rerun.clock.advance(rerun.lease_seconds + 1)  # the runner that left it is gone
    if key == "foreign":
        summary = etl.migrate(rerun, [COURSE], workers=1, retries=0)
        row = summary.courses.iloc[0]
        assert row["outcome"] == "refused" and summary.exit_code == 2, summary.text()
        assert f"{layout.marker} (21 bytes)" in row["error"] and "move that object away" in row["error"]
        assert cfg.s3.get_object(Bucket=cfg.bucket, Key=layout.marker)["Body"].read() == b"<html>not ours</html>"
        return
    if key == "legacy commit":  # committed by 0.3.0: skipped, and still served from its fixed keys
        summary = etl.migrate(rerun, [COURSE], workers=1, retries=0)
        assert summary.courses.iloc[0]["outcome"] == "skipped" and summary.exit_code == 0, summary.text()
        assert etl.verify(rerun, COURSE).ok and listing(rerun, layout.staging_root) == {}
    else:
        assert_finished_by_rerun(rerun, contentstore, COURSE)
    assert etl.status(rerun, COURSE)["state"].tolist() == ["promoted"]
