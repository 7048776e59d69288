import hashlib
import io

import pyarrow.parquet as pq
import pytest

import etl
import etl.store.probe
from etl.protocol import state as st
from etl.model.layout import Layout, parse_course_id
from etl.demo.sample import save_asset
from tests.conftest import COURSE, OLD, fill
from tests.helpers import md5, objects, snapshot, staging_prefix, live_objects


@pytest.mark.parametrize("course_id", [COURSE, OLD])
def test_extract_stages_every_transcript_byte_exact_with_a_manifest(cfg, contentstore, course_id):
    data = fill(contentstore, course_id)
    before = snapshot(contentstore)
    result = etl.extract(cfg, course_id)
    layout = Layout(cfg, parse_course_id(course_id))
    staged = objects(cfg, staging_prefix(cfg, course_id) + "transcripts/")
    assert sorted(staged.values()) == sorted(data.values())
    assert result.transcripts == len(data) and result.bytes == sum(map(len, data.values()))
    assert result.manifest_key == layout.staging_manifest(1) and staging_prefix(cfg, course_id).endswith("/e1/")
    table = pq.read_table(io.BytesIO(objects(cfg, result.manifest_key)[result.manifest_key]))
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta["etl.course"] == course_id and meta["etl.run_id"] == result.run_id
    assert meta["etl.source_fingerprint"] == result.source_fingerprint
    df = table.to_pandas().set_index("asset_name")
    for col in ["course_id", "asset_id", "language", "format", "content_type", "length", "md5", "upload_date",
                "staged_key", "live_key", "parse_ok", "parse_error"]:
        assert col in df.columns or col == "asset_name"
    for name, body in data.items():
        assert df.loc[name, "md5"] == md5(body) and df.loc[name, "length"] == len(body)
        assert df.loc[name, "sha256"] == hashlib.sha256(body).hexdigest()  # sent as ChecksumSHA256 with the put
        assert staged[df.loc[name, "staged_key"]] == body
    assert df.loc["es_subs_abc.srt.sjson", "language"] == "es"
    assert df.loc["0b5f9e1c-5a34-4b8e-9d0e-0c9a3f6c2b11-fr.srt", "language"] == "fr"
    assert df.loc["subs_abc.srt.sjson", "format"] == "sjson"
    bad = set(df.index[df["parse_ok"] == False])  # noqa: E712
    assert bad == {"subs_empty.srt.sjson", "subs_bad_lists.srt.sjson", "subs_not_json.srt.sjson", "broken-en.srt"}
    assert "differ in length" in df.loc["subs_bad_lists.srt.sjson", "parse_error"]
    assert result.parse_problems == 4
    assert st.read(cfg, parse_course_id(course_id))[0]["state"] == "staged"
    assert snapshot(contentstore) == before  # never writes to the contentstore
    assert result.local_manifest.endswith(f"{result.run_id}.parquet")
    assert pq.read_table(result.local_manifest).num_rows == len(data)


@pytest.mark.parametrize("how", ["missing chunk", "truncated chunk", "wrong length", "wrong md5"])
def test_corrupt_source_fails_the_course_and_leaves_nothing_in_s3(cfg, contentstore, how):
    from tests.test_contentstore import corrupt

    fill(contentstore)
    corrupt(contentstore, COURSE, "subs_zz_corrupt.srt.sjson", how)
    with pytest.raises(etl.CorruptSource, match="subs_zz_corrupt.srt.sjson"):
        etl.extract(cfg, COURSE)
    layout = Layout(cfg, parse_course_id(COURSE))
    assert objects(cfg, layout.staging_root) == {} and live_objects(cfg, layout) == {}
    record = st.read(cfg, parse_course_id(COURSE))[0]
    assert record["state"] == "failed" and "subs_zz_corrupt.srt.sjson" in record["error"]


def test_extract_again_replaces_the_previous_staging_run(cfg, contentstore):
    fill(contentstore)
    first = etl.extract(cfg, COURSE)
    second = etl.extract(cfg, COURSE)
    layout = Layout(cfg, parse_course_id(COURSE))
    epochs = {k.split("/")[2] for k in objects(cfg, layout.staging_root)}
    assert epochs == {"e2"} and first.run_id != second.run_id and second.manifest_key == layout.staging_manifest(2)


def test_course_without_transcripts_stages_an_empty_manifest(cfg, contentstore):
    save_asset(contentstore, COURSE, "handout.pdf", b"%PDF")
    result = etl.extract(cfg, COURSE)
    assert result.transcripts == 0
    promoted = etl.promote(cfg, COURSE)
    assert promoted.transcripts == 0 and etl.verify(cfg, COURSE).ok


def test_foreign_objects_under_the_live_prefix_are_refused_before_any_work(cfg, contentstore):
    fill(contentstore)
    layout = Layout(cfg, parse_course_id(COURSE))
    cfg.s3.put_object(Bucket=cfg.bucket, Key=layout.live_key(1, "subs_abc.srt.sjson"), Body=b"someone else's")
    with pytest.raises(etl.Conflict, match="did not write"):
        etl.extract(cfg, COURSE)
    assert live_objects(cfg, layout) == {layout.live_key(1, "subs_abc.srt.sjson"): b"someone else's"}
    assert objects(cfg, layout.staging_root) == {}


def test_a_multipart_upload_whose_completion_answer_is_lost_is_cleaned_up_and_a_failing_abort_keeps_the_cause(
        make_cfg, contentstore):
    from botocore.exceptions import ConnectionClosedError

    from etl.demo.sample import cues, srt

    cfg = make_cfg(multipart_bytes=5 * 1024 * 1024)
    save_asset(contentstore, COURSE, "long-en.srt", srt(cues(90000, "A very long lecture")))
    lost = {"done": False}

    def lose_the_answer(http_response, **_):  # S3 completed the upload; the client never hears it
        if not lost["done"]:
            lost["done"] = True
            raise ConnectionClosedError(endpoint_url=cfg.s3_endpoint_url)

    def refuse(params, model, **_):  # and the checks that follow fail as well
        if model.name == "AbortMultipartUpload" or (model.name == "HeadObject" and "long-en" in params["Key"]):
            raise ConnectionClosedError(endpoint_url=f"{cfg.s3_endpoint_url} ({model.name})")

    etl.store.probe.probe(cfg)  # the store probe's own multipart upload is not the one whose answer is lost
    cfg.s3.meta.events.register("after-call.s3.CompleteMultipartUpload", lose_the_answer)
    cfg.s3.meta.events.register("before-parameter-build.s3.*", refuse)
    with pytest.raises(etl.StorageError, match="CompleteMultipartUpload"):
        etl.extract(cfg, COURSE)
    layout = Layout(cfg, parse_course_id(COURSE))
    assert lost["done"] and objects(cfg, layout.staging_root) == {}
    assert st.read(cfg, parse_course_id(COURSE))[0]["state"] == "failed"


def test_a_staged_put_whose_answer_is_lost_is_read_back_and_one_that_cannot_be_is_cleaned_up(make_cfg, contentstore):
    """S3 stored the object, the client never heard: its nonce read back settles it; unread, the key goes."""
    from botocore.exceptions import ConnectionClosedError

    cfg = make_cfg(retry_attempts=1)
    fill(contentstore)
    heads = {"refuse": False}

    def lose_the_answer(params, context, **_):
        context["lose"] = "/transcripts/subs_abc" in params.get("Key", "")

    def answer_lost(context, **_):
        if context.get("lose"):
            raise ConnectionClosedError(endpoint_url=cfg.s3_endpoint_url)

    def no_head(params, **_):
        if heads["refuse"] and "/transcripts/subs_abc" in params.get("Key", ""):
            raise ConnectionClosedError(endpoint_url=cfg.s3_endpoint_url)

    cfg.s3.meta.events.register("before-parameter-build.s3.PutObject", lose_the_answer)
    cfg.s3.meta.events.register("after-call.s3.PutObject", answer_lost)
    cfg.s3.meta.events.register("before-parameter-build.s3.HeadObject", no_head)
    staged = etl.extract(cfg, COURSE)  # the put landed: reading the key back finds its nonce
    assert staged.transcripts == 9 and etl.reconcile(cfg, COURSE).staged_objects == 9
    etl.rollback(cfg, COURSE)
    heads["refuse"] = True  # and when the key cannot be read back either, the outcome is unknown: it goes
    with pytest.raises(etl.StorageError):
        etl.extract(cfg, COURSE)
    heads["refuse"] = False
    assert objects(cfg, Layout(cfg, parse_course_id(COURSE)).staging_root) == {}
