"""The S3 contract: a store that cannot hold the protocol is refused before the first write; quirks that can be
lived with are, and the guarantees still hold. Each store is emulated by a proxy in front of the suite's moto."""

import os
import subprocess
import sys

import pytest

import etl
from etl import probe
from tests.batch import build_batch, source_transcripts
from tests.helpers import listing, live_prefix, objects
from tests.s3proxy import FaultProxy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

REFUSED = [
    ({"strip": ("If-None-Match", "If-Match")}, "ignores If-None-Match: two runners could both commit one course"),
    ({"strip": ("If-Match",)}, "ignores If-Match: a runner that lost its lease could still commit"),
    ({"not_implemented": ("If-None-Match", "If-Match")}, "answers 501 NotImplemented to If-None-Match"),
]


@pytest.mark.parametrize("quirks, said", REFUSED, ids=["no conditions", "no If-Match", "501"])
def test_a_store_that_cannot_hold_the_protocol_is_refused_before_any_transcript_is_written(
        make_cfg, contentstore, s3_endpoint, quirks, said):
    ids = build_batch(contentstore, 3)[1:]
    base = make_cfg()
    with FaultProxy(s3_endpoint) as proxy:
        proxy.behave(**quirks)
        cfg = make_cfg(s3_endpoint_url=proxy.url)
        with pytest.raises(etl.UsageError, match=said) as err:
            etl.migrate(cfg, ids, workers=1)
        assert "refusing to run on it" in str(err.value) and "\n" not in str(err.value)
        with pytest.raises(etl.UsageError, match=said):
            etl.extract(cfg, ids[0])
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
        run = subprocess.run([sys.executable, "-m", "tests.children.cli", "3", "0", "migrate", *ids, "--bucket",
                              cfg.bucket, "--s3-endpoint-url", proxy.url, "--manifest-dir", ""],
                             capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
        assert run.returncode == 2 and said in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert listing(base) == {}  # not a transcript, not a record, not a probe object


def test_a_store_that_needs_content_md5_on_batch_deletes_still_leaves_nothing_behind(
        make_cfg, contentstore, s3_endpoint):
    ids = build_batch(contentstore, 4)[1:]
    with FaultProxy(s3_endpoint) as proxy:
        proxy.behave(delete_needs_md5=True)
        cfg = make_cfg(s3_endpoint_url=proxy.url)
        summary = etl.migrate(cfg, ids, workers=1)
        assert summary.ok and summary.count("promoted") == 3, summary.text()
        assert listing(cfg, cfg.staging_prefix + "/") == {}
        etl.rollback(cfg, ids[0], force=True)
        assert [k for k in listing(cfg, cfg.live_prefix + "/") if ids[0].split("+")[1] in k] == []
        assert proxy.injected.get("batch_delete", 0) >= 3 and "batch_delete_without_md5" not in proxy.injected


def test_one_bit_flipped_in_transit_fails_the_course_at_once_and_nothing_goes_live(make_cfg, contentstore,
                                                                                   s3_endpoint):
    course_id = build_batch(contentstore, 3)[2]
    with FaultProxy(s3_endpoint) as proxy:
        cfg = make_cfg(s3_endpoint_url=proxy.url)
        probe.probe(cfg)
        proxy.behave(flip_bit_in="/transcripts/")
        summary = etl.migrate(cfg, [course_id], workers=1, retries=0)
        assert proxy.injected["flipped"] == 1
    row = summary.courses.iloc[0]
    assert row["outcome"] == "failed" and "damaged in transit" in row["error"], row.to_dict()
    clean = make_cfg()
    assert etl.committed(clean, course_id) is None and listing(clean, clean.staging_prefix + "/") == {}
    again = etl.migrate(clean, [course_id], workers=1)  # a re-run on a sound path migrates it byte for byte
    assert again.ok and objects(clean, live_prefix(clean, course_id)) == {
        live_prefix(clean, course_id) + etl.layout.quote_segment(n): b
        for n, b in source_transcripts(contentstore, course_id).items()}


def test_the_probe_costs_at_most_ten_requests_once_per_process_and_leaves_nothing(make_cfg):
    cfg = make_cfg()
    sent = []
    cfg.s3.meta.events.register("after-call.s3.*", lambda model, **_: sent.append(model.name))
    store = probe.probe(cfg)
    assert len(sent) <= 10, sent
    assert probe.probe(cfg) is store and len(sent) <= 10  # cached for the process
    assert store.md5_etags and not store.versioned and "ETags are MD5s" in store.describe()
    assert listing(cfg) == {}


@pytest.fixture
def kms_etags(monkeypatch):
    """Make the suite's moto answer as an SSE-KMS bucket does: ETags that are not MD5s, different per key."""
    import hashlib

    from moto.s3.models import FakeKey

    real = FakeKey.etag

    def opaque(self):
        return '"' + hashlib.md5(f"kms:{self.name}:{real.fget(self)}".encode()).hexdigest() + '"'

    monkeypatch.setattr(FakeKey, "etag", property(opaque))


def test_an_sse_kms_bucket_keeps_every_guarantee(make_cfg, contentstore, s3_endpoint, kms_etags):
    from etl.sample import cues, save_asset, srt

    ids = build_batch(contentstore, 5)[1:]
    save_asset(contentstore, ids[1], "long-en.srt", srt(cues(130000, "A long lecture")))  # a multipart upload
    cfg = make_cfg(multipart_bytes=5 * 1024 * 1024)
    store = probe.probe(cfg)
    assert not store.md5_etags and "ETags are opaque" in store.describe()
    with FaultProxy(s3_endpoint) as proxy:
        proxy.reset("PUT", "/_COMMIT.json", after_forward=True, times=1)  # a commit lands; its answer is lost
        summary = etl.migrate(make_cfg(s3_endpoint_url=proxy.url, multipart_bytes=5 * 1024 * 1024), ids, workers=1,
                              retries=0)
        assert proxy.injected["reset_after"] == 1
    assert summary.ok and summary.count("promoted") == 4 and set(summary.courses["ready"]) == {True}, summary.text()
    for course_id in ids:
        assert etl.verify(cfg, course_id).ok
        assert set(etl.diff(cfg, course_id)["mark"]) <= {"="}
        assert etl.status(cfg, course_id)["state"].tolist() == ["promoted"]
    assert listing(cfg, cfg.staging_prefix + "/") == {}
    victim = live_prefix(cfg, ids[0]) + etl.layout.quote_segment(sorted(source_transcripts(contentstore, ids[0]))[0])
    cfg.s3.put_object(Bucket=cfg.bucket, Key=victim, Body=b"damaged")
    assert "checksum differs" in " ".join(etl.verify(cfg, ids[0]).problems)
