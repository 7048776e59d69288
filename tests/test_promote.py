import json
from datetime import datetime, timezone

import pytest

import etl
from etl.protocol import claims, state as st
from etl.store import s3
from etl.model.layout import Layout, parse_course_id, quote_segment
from etl.demo.sample import cues, save_asset, sjson, srt
from tests.helpers import commit_doc, listing, live_key, live_prefix, objects, snapshot, staged_epoch, live_objects
from tests.conftest import COURSE, OLD, fill


def layout_of(cfg, course_id=COURSE):
    return Layout(cfg, parse_course_id(course_id))


@pytest.mark.parametrize("course_id", [COURSE, OLD])
def test_promote_publishes_byte_exact_then_marker_and_clears_staging(cfg, contentstore, course_id):
    data = fill(contentstore, course_id)
    before = snapshot(contentstore)
    run = etl.extract(cfg, course_id).run_id
    result = etl.promote(cfg, course_id)
    layout = layout_of(cfg, course_id)
    live = objects(cfg, layout.live_transcripts(2))
    assert {k.rsplit("/", 1)[1]: v for k, v in live.items()} == {quote_segment(n): b for n, b in data.items()}
    marker = json.loads(objects(cfg, layout.marker)[layout.marker])
    assert marker["course_id"] == course_id and marker["run_id"] == run and marker["status"] == "committed"
    assert marker["transcripts"] == len(data) and marker["bytes"] == sum(map(len, data.values()))
    # promote took the course's next epoch: the staged run of epoch 1 went live under epoch 2
    assert marker["epoch"] == 2 and marker["transcripts_prefix"] == layout.live_transcripts(2)
    assert marker["manifest_key"] == layout.live_manifest(2)
    df = etl.model.manifest.from_bytes(objects(cfg, layout.live_manifest(2))[layout.live_manifest(2)])[0]
    assert set(df["live_key"]) == set(live) and set(objects(cfg, layout.live_root)) == \
        set(live) | {layout.live_manifest(2), layout.marker}
    for field in ("manifest_sha256", "source_fingerprint", "committed_at", "extracted_at", "tool_version"):
        assert marker[field]
    assert objects(cfg, layout.staging_root) == {}
    assert st.read(cfg, parse_course_id(course_id))[0]["state"] == "promoted"
    assert result.transcripts == len(data) and result.copied == len(data)
    heads = [cfg.s3.head_object(Bucket=cfg.bucket, Key=k)["Metadata"] for k in live]
    assert {h["etl-run-id"] for h in heads} == {run}
    assert snapshot(contentstore) == before


def test_second_promote_and_extract_are_refused_and_change_nothing(cfg, contentstore):
    fill(contentstore)
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    before = listing(cfg)
    with pytest.raises(etl.AlreadyPromoted, match="already promoted") as err:
        etl.promote(cfg, COURSE)
    assert "\n" not in str(err.value)
    with pytest.raises(etl.AlreadyPromoted):
        etl.extract(cfg, COURSE)
    after = listing(cfg)
    assert {k: v for k, v in after.items() if "/events/" not in k} == \
        {k: v for k, v in before.items() if "/events/" not in k}


def test_promote_without_a_staged_run_is_refused(cfg, contentstore):
    fill(contentstore)
    with pytest.raises(etl.NotStaged, match="extract"):
        etl.promote(cfg, COURSE)


@pytest.mark.parametrize("edit", ["added", "edited", "deleted"])
def test_source_changed_between_extract_and_promote_is_refused_and_nothing_goes_live(cfg, contentstore, edit):
    fill(contentstore)
    etl.extract(cfg, COURSE)
    if edit == "added":
        save_asset(contentstore, COURSE, "subs_new_upload.srt.sjson", sjson(cues(2)))
        name = "subs_new_upload.srt.sjson"
    elif edit == "edited":  # Studio re-uploads: delete, then save the new bytes under the same id
        save_asset(contentstore, COURSE, "subs_abc.srt.sjson", sjson(cues(6)))
        name = "subs_abc.srt.sjson"
    else:
        import gridfs

        gridfs.GridFS(contentstore, "fs").delete(
            "asset-v1:edX+DemoX+2024_T1+type@asset+block@broken-en.srt")
        name = "broken-en.srt"
    with pytest.raises(etl.SourceChanged, match=name) as err:
        etl.promote(cfg, COURSE)
    assert "\n" not in str(err.value) and COURSE in str(err.value)
    layout = layout_of(cfg)
    assert live_objects(cfg, layout) == {} and objects(cfg, layout.staging_root) == {}
    record = st.read(cfg, parse_course_id(COURSE))[0]
    assert record["state"] == "failed" and name in record["error"]
    etl.extract(cfg, COURSE)  # the operator's next step works
    assert etl.promote(cfg, COURSE).transcripts == contentstore["fs.files"].count_documents(
        {"content_son.name": {"$regex": r"\.(srt|sjson)$"}, "content_son.category": "asset"})


def test_edit_that_keeps_length_but_changes_bytes_is_detected(cfg, contentstore):
    save_asset(contentstore, COURSE, "a.srt", srt(cues(2, "aaaa")))
    etl.extract(cfg, COURSE)
    save_asset(contentstore, COURSE, "a.srt", srt(cues(2, "bbbb")),
               upload_date=datetime(2020, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(etl.SourceChanged, match="a.srt"):
        etl.promote(cfg, COURSE)


def test_foreign_object_at_a_live_key_is_a_conflict_and_is_never_deleted(cfg, contentstore):
    fill(contentstore)
    etl.extract(cfg, COURSE)
    layout = layout_of(cfg)
    foreign = layout.live_key(2, "subs_abc.srt.sjson")
    cfg.s3.put_object(Bucket=cfg.bucket, Key=foreign, Body=b"hand-uploaded")
    with pytest.raises(etl.Conflict, match="subs_abc.srt.sjson"):
        etl.promote(cfg, COURSE)
    assert live_objects(cfg, layout) == {foreign: b"hand-uploaded"}
    assert st.read(cfg, parse_course_id(COURSE))[0]["state"] == "failed"


def crash_mid_promote(make_cfg, contentstore, copies):
    """Leave a course as a promote killed after ``copies`` copies would: promoting, its claim of epoch 2 dead."""
    fill(contentstore)
    cfg = make_cfg()
    run = etl.extract(cfg, COURSE).run_id
    course = parse_course_id(COURSE)
    claim = claims.claim(cfg, course, run, st.PROMOTING)
    claim.stop()  # the process died: no more heartbeats
    from etl.reconcile import check

    _, df, _, _ = check(cfg, course, run, staged_epoch(cfg, COURSE))
    for staged, name in list(zip(df["staged_key"], df["asset_name"]))[:copies]:
        s3.copy(cfg, staged, layout_of(cfg).live_key(claim.epoch, name))
    return run


def test_rerun_after_a_crash_mid_promote_rolls_the_staged_run_forward_into_a_new_epoch(make_cfg, contentstore):
    run = crash_mid_promote(make_cfg, contentstore, copies=4)
    cfg = make_cfg()
    cfg.clock.advance(cfg.lease_seconds + 1)  # by this runner's reading of S3's clock, the lease has run out
    assert etl.status(cfg)["state"].tolist() == ["promoting_stale"]
    assert etl.status(make_cfg())["state"].tolist() == ["promoting"]  # still held, on the clock as it is
    result = etl.promote(cfg, COURSE)
    assert result.run_id == run and result.copied == result.transcripts
    layout = layout_of(cfg)
    assert commit_doc(cfg, COURSE)["epoch"] == 3 and live_prefix(cfg, COURSE) == layout.live_transcripts(3)
    assert objects(cfg, layout.live_epoch(2)) == {}  # the dead claim's copies are gone
    assert etl.verify(cfg, COURSE).ok and objects(cfg, layout.staging_root) == {}


def test_promote_refuses_while_another_runner_holds_the_course(make_cfg, contentstore):
    fill(contentstore)
    cfg = make_cfg()
    run = etl.extract(cfg, COURSE).run_id
    claim = claims.claim(cfg, parse_course_id(COURSE), run, st.PROMOTING)
    try:
        with pytest.raises(etl.ConcurrentRun, match="held by"):
            etl.promote(cfg, COURSE)
    finally:
        claim.stop()
    assert set(objects(cfg, layout_of(cfg).live_root)) == {layout_of(cfg).marker}  # the holder's fence, alone
    assert etl.committed(cfg, COURSE) is None


def test_marker_is_the_truth_when_the_status_record_lags(cfg, contentstore):
    fill(contentstore)
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    course = parse_course_id(COURSE)
    record, tag = st.read(cfg, course)
    lagging = dict({k: v for k, v in record.items() if k != "_age"}, state="promoting",
                   lease_expires_at="2000-01-01T00:00:00.000Z", lease_seconds=0)
    s3.put_json(cfg, layout_of(cfg).record, lagging, metadata={}, if_match=f'"{tag}"')
    assert etl.status(cfg)["state"].tolist() == ["promoted"]
    with pytest.raises(etl.AlreadyPromoted):
        etl.promote(cfg, COURSE)
    assert st.read(cfg, course)[0]["state"] == "promoted"  # repaired from the marker


def test_failure_during_promote_rolls_live_back(make_cfg, contentstore):
    """A manifest whose staged object vanished fails reconcile: nothing goes live, staging is cleared."""
    fill(contentstore)
    cfg = make_cfg()
    etl.extract(cfg, COURSE)
    layout = layout_of(cfg)
    victim = layout.staged_key(1, "subs_abc.srt.sjson")
    cfg.s3.delete_object(Bucket=cfg.bucket, Key=victim)
    with pytest.raises(etl.ReconcileError, match="subs_abc.srt.sjson"):
        etl.promote(cfg, COURSE)
    assert live_objects(cfg, layout) == {} and objects(cfg, layout.staging_root) == {}
    assert st.read(cfg, parse_course_id(COURSE))[0]["state"] == "failed"


def test_reconcile_alone_reports_counts_and_names_tampered_objects(cfg, contentstore):
    fill(contentstore)
    etl.extract(cfg, COURSE)
    ok = etl.reconcile(cfg, COURSE)
    assert ok.contentstore_count == ok.manifest_rows == ok.staged_objects == 9
    key = layout_of(cfg).staged_key(1, "broken-en.srt")
    cfg.s3.put_object(Bucket=cfg.bucket, Key=key, Body=b"tampered")
    with pytest.raises(etl.ReconcileError, match="broken-en.srt"):
        etl.reconcile(cfg, COURSE)


def test_large_transcript_goes_through_multipart_and_verifies(make_cfg, contentstore):
    cfg = make_cfg(multipart_bytes=5 * 1024 * 1024)
    big = srt(cues(130000, "A very long lecture with many cues"))
    assert len(big) > 2 * cfg.multipart_bytes
    save_asset(contentstore, COURSE, "long-en.srt", big)
    save_asset(contentstore, COURSE, "short-en.srt", srt(cues(3)))
    etl.extract(cfg, COURSE)
    layout = layout_of(cfg)
    staged_etag = listing(cfg, layout.staged_key(1, "long-en.srt"))[layout.staged_key(1, "long-en.srt")]
    assert staged_etag.endswith("-3")  # three parts
    etl.promote(cfg, COURSE)
    assert objects(cfg, live_key(cfg, COURSE, "long-en.srt"))[live_key(cfg, COURSE, "long-en.srt")] == big
    assert etl.verify(cfg, COURSE).ok


def test_a_runner_that_loses_the_race_to_promote_is_told_the_course_is_promoted(cfg, contentstore):
    """The late runner looked before the marker existed; its claim then meets a promoted record."""
    from etl.model.layout import new_run_id

    fill(contentstore)
    run = etl.extract(cfg, COURSE).run_id
    etl.promote(cfg, COURSE)
    course = parse_course_id(COURSE)
    with pytest.raises(etl.AlreadyPromoted, match=run):
        claims.claim(cfg, course, run, st.PROMOTING)
    with pytest.raises(etl.AlreadyPromoted):
        claims.claim(cfg, course, new_run_id(), st.EXTRACTING)
