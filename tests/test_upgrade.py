"""Courses migrated by 0.3.0 (no epochs, ``_MIGRATED.json``) stay valid: read, verified, skipped, rolled back."""

import json

import pytest

import etl
from etl.model import manifest
from etl.protocol import state as st
from etl.store import s3
from etl.model.layout import Layout, parse_course_id
from tests.conftest import COURSE, OLD, fill
from tests.helpers import listing, live_objects, objects


def as_0_3_0(cfg, course_id):
    """Rewrite a committed course into the layout 0.3.0 left: fixed keys, a format-2 marker, a record with no epoch."""
    course = parse_course_id(course_id)
    layout = Layout(cfg, course)
    doc = etl.committed(cfg, course_id)
    data = objects(cfg, doc["manifest_key"])[doc["manifest_key"]]
    df, _ = manifest.from_bytes(data)
    keys = [layout.live_key(0, n) for n in df["asset_name"]]
    for old, new in zip(df["live_key"], keys):
        s3.copy(cfg, old, new)
    s3.put(cfg, layout.legacy_manifest, manifest.relocate(data, keys), metadata=s3.tool_metadata(course, doc["run_id"]))
    legacy = {k: v for k, v in doc.items() if k not in ("epoch", "transcripts_prefix")}
    legacy.update(format=2, manifest_key=layout.legacy_manifest,
                  manifest_sha256=manifest.checksum(manifest.relocate(data, keys)))
    s3.put_json(cfg, layout.legacy_marker, legacy, metadata=dict(s3.tool_metadata(course, doc["run_id"]),
                                                                 **{"etl-marker": "committed"}))
    for key in list(df["live_key"]) + [doc["manifest_key"], layout.marker]:
        cfg.s3.delete_object(Bucket=cfg.bucket, Key=key)
    record, tag = st.read(cfg, course)
    old = {k: v for k, v in record.items() if k not in ("_age", "epoch", "staged_epoch", "version", "holder")}
    s3.put_json(cfg, layout.record, old, metadata={}, if_match=f'"{tag}"')
    return layout


@pytest.mark.parametrize("course_id", [COURSE, OLD])
def test_a_course_migrated_by_0_3_0_verifies_diffs_and_is_skipped(cfg, contentstore, course_id):
    fill(contentstore, course_id)
    etl.migrate(cfg, [course_id], workers=1)
    layout = as_0_3_0(cfg, course_id)
    assert layout.marker not in listing(cfg, layout.live_root)
    assert etl.committed(cfg, course_id)["manifest_key"] == layout.legacy_manifest
    assert etl.verify(cfg, course_id).ok, etl.verify(cfg, course_id).problems
    assert set(etl.diff(cfg, course_id)["mark"]) == {"="}
    before = listing(cfg, layout.live_root)
    summary = etl.migrate(cfg, [course_id], workers=1)
    assert summary.count("skipped") == 1 and summary.exit_code == 0
    assert listing(cfg, layout.live_root) == before
    assert etl.report(cfg, [course_id])["ready"].tolist() == [True]
    assert etl.status(cfg, course_id)["state"].tolist() == ["promoted"]
    with pytest.raises(etl.Refused):
        etl.rollback(cfg, course_id)
    with pytest.raises(etl.AlreadyPromoted):
        etl.extract(cfg, course_id)


def test_a_0_3_0_course_rolled_back_with_force_then_migrates_again_under_an_epoch(cfg, contentstore):
    fill(contentstore)
    etl.migrate(cfg, [COURSE], workers=1)
    layout = as_0_3_0(cfg, COURSE)
    plan = etl.rollback(cfg, COURSE, force=True, dry_run=True)
    assert layout.legacy_marker in plan.would_delete and len(plan.would_delete) == 11
    result = etl.rollback(cfg, COURSE, force=True)
    assert result.was_promoted and live_objects(cfg, layout) == {} and etl.committed(cfg, COURSE) is None
    summary = etl.migrate(cfg, [COURSE], workers=1)
    assert summary.count("promoted") == 1
    doc = etl.committed(cfg, COURSE)
    assert doc["epoch"] >= 1 and json.loads(objects(cfg, layout.marker)[layout.marker])["status"] == "committed"
    assert layout.legacy_marker not in listing(cfg, layout.live_root) and etl.verify(cfg, COURSE).ok
