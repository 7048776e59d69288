"""The S3 contract: a store that cannot hold the protocol is refused before the first write; quirks that can be
lived with are, and the guarantees still hold. Each store is emulated by a proxy in front of the suite's moto."""

import os
import subprocess
import sys

import pytest

import etl
from etl.store import probe
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
        make_cfg, contentstore, s3_endpoint, tmp_path, capsys):
    from tests.helpers import run_cli

    ids = build_batch(contentstore, 5)[1:]
    with FaultProxy(s3_endpoint) as proxy:
        proxy.behave(delete_needs_md5=True)
        cfg = make_cfg(s3_endpoint_url=proxy.url)
        summary = etl.migrate(cfg, ids[:3], workers=1)
        assert summary.ok and summary.count("promoted") == 3, summary.text()
        code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "migrate", ids[3])
        assert code == 0 and "1 promoted" in out, err
        assert listing(cfg, cfg.staging_prefix + "/") == {}
        etl.rollback(cfg, ids[0], force=True)
        assert [k for k in listing(cfg, cfg.live_prefix + "/") if ids[0].split("+")[1] in k
                and not k.endswith("/_COMMIT.json")] == []
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
        live_prefix(clean, course_id) + etl.model.layout.quote_segment(n): b
        for n, b in source_transcripts(contentstore, course_id).items()}


def test_the_probe_costs_at_most_eleven_requests_once_per_process_and_leaves_nothing(make_cfg):
    cfg = make_cfg()
    sent = []
    cfg.s3.meta.events.register("after-call.s3.*", lambda model, **_: sent.append(model.name))
    store = probe.probe(cfg)
    assert len(sent) <= 11, sent
    assert probe.probe(cfg) is store and len(sent) <= 11  # cached for the process
    assert store.md5_etags and not store.versioned and "ETags are MD5s" in store.describe()
    assert store.conditional_delete and "If-Match on DELETE honoured" in store.describe()
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


def test_an_sse_kms_bucket_keeps_every_guarantee(contentstore, inprocess_s3_endpoint, kms_etags, tmp_path,
                                                 capsys):
    import uuid

    from etl.demo.sample import cues, save_asset, srt
    from tests.helpers import run_cli

    ids = build_batch(contentstore, 5)[1:]
    save_asset(contentstore, ids[1], "long-en.srt", srt(cues(130000, "A long lecture")))  # a multipart upload
    bucket = f"etl-kms-{uuid.uuid4().hex[:16]}"

    def make_cfg(**settings):  # the in-process server, whose answers the fixture changed
        return etl.Config(**{**dict(bucket=bucket, s3_endpoint_url=inprocess_s3_endpoint, contentstore=contentstore,
                                    manifest_dir=None, progress=False, s3_concurrency=8), **settings})

    cfg = make_cfg(multipart_bytes=5 * 1024 * 1024)
    cfg.s3.create_bucket(Bucket=bucket)
    store = probe.probe(cfg)
    assert not store.md5_etags and "ETags are opaque" in store.describe()
    assert store.keeps_checksums and not store.checks_arrival  # moto keeps SHA-256 checksums, checks none
    with FaultProxy(inprocess_s3_endpoint) as proxy:
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
    for command in (["verify", ids[1]], ["diff", ids[1]], ["rollback", ids[2], "--force"], ["migrate", ids[2]]):
        code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, *command)
        assert code == 0, (command, out, err)
    names = sorted(source_transcripts(contentstore, ids[0]))
    victim = live_prefix(cfg, ids[0]) + etl.model.layout.quote_segment(names[0])
    cfg.s3.put_object(Bucket=cfg.bucket, Key=victim, Body=b"damaged")  # no checksum kept: read back
    assert f"checksum differs in S3: {names[0]!r}" in " ".join(etl.verify(cfg, ids[0]).problems)
    cfg.s3.put_object(Bucket=cfg.bucket, Key=victim, Body=b"damaged", ChecksumAlgorithm="SHA256")  # one kept
    assert f"checksum differs in S3: {names[0]!r}" in " ".join(etl.verify(cfg, ids[0]).problems)


@pytest.fixture
def s3rver(tmp_path):
    """Start s3rver (npm), a second real S3 implementation, on a free loopback port; it ignores conditional headers."""
    import shutil

    from tests.conftest import free_port, wait_for_port

    binary = shutil.which("s3rver")
    if not binary:
        pytest.skip("s3rver is not installed (npm install -g s3rver)")
    port = free_port()
    proc = subprocess.Popen([binary, "-d", str(tmp_path), "-p", str(port), "-a", "127.0.0.1", "--silent",
                             "--configure-bucket", "refused"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, proc, "s3rver", seconds=30)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(30)


def test_s3rver_a_store_that_ignores_conditions_is_refused_with_the_right_line(s3rver, contentstore):
    import boto3
    from botocore.config import Config as BotoConfig

    ids = build_batch(contentstore, 2)
    client = boto3.session.Session(aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",  # its own keys
                                   region_name="us-east-1").client(
        "s3", endpoint_url=s3rver, config=BotoConfig(s3={"addressing_style": "path"},
                                                     request_checksum_calculation="when_required",
                                                     response_checksum_validation="when_required"))
    cfg = etl.Config(bucket="refused", s3_endpoint_url=s3rver, contentstore=contentstore, manifest_dir=None,
                     progress=False, s3_client=client)
    said = "ignores If-None-Match: two runners could both commit one course; refusing to run on it"
    with pytest.raises(etl.UsageError, match=said):
        etl.migrate(cfg, ids, workers=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env.update(AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER")
    run = subprocess.run([sys.executable, "-m", "tests.children.cli", "2", "0", "migrate", *ids, "--bucket",
                          "refused", "--s3-endpoint-url", s3rver, "--manifest-dir", ""],
                         capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert run.returncode == 2 and said in run.stderr and run.stderr.count("\n") == 1, run.stderr
    assert listing(cfg) == {}


def test_an_injected_client_without_the_tool_s_settings_is_refused_before_any_request(make_cfg):
    import boto3

    base = make_cfg()
    default = boto3.client("s3", endpoint_url=base.s3_endpoint_url, region_name="us-east-1")
    cfg = make_cfg(s3_client=default)
    with pytest.raises(etl.UsageError, match="request_checksum_calculation='when_supported'"):
        etl.status(cfg)
    assert listing(base) == {}


def test_a_versioned_bucket_says_what_rollback_leaves_and_purges_only_the_tool_s_versions(make_cfg, contentstore,
                                                                                         tmp_path, capsys):
    from etl.model.layout import Layout, parse_course_id
    from etl.store.versions import list_versions
    from tests.helpers import run_cli

    ids = build_batch(contentstore, 3)[1:]
    cfg = make_cfg()
    cfg.s3.put_bucket_versioning(Bucket=cfg.bucket, VersioningConfiguration={"Status": "Enabled"})
    assert probe.probe(cfg).versioned
    assert list(list_versions(cfg, f"{cfg.state_prefix}/probe/")) == []  # the probe left not even a version
    etl.migrate(cfg, ids, workers=1)
    layout = Layout(cfg, parse_course_id(ids[0]))
    foreign = layout.live_root + "notes.txt"
    cfg.s3.put_object(Bucket=cfg.bucket, Key=foreign, Body=b"v1")
    cfg.s3.put_object(Bucket=cfg.bucket, Key=foreign, Body=b"v2")  # a noncurrent version nobody may purge
    result = etl.rollback(cfg, ids[0], force=True)
    assert result.noncurrent > 0 and result.delete_markers > 0 and "the bucket is versioned" in str(result)
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "rollback", ids[1], "--force", "--purge-versions")
    assert code == 0 and "purged " in out, err
    other = Layout(cfg, parse_course_id(ids[1]))
    kept = [v for p in (other.live_root, other.staging_root) for v in list_versions(cfg, p)]
    assert [(v["Key"], v["IsLatest"]) for v in kept] == [(other.marker, True)]  # the release, current
    every = lambda: sorted((v["Key"], v["VersionId"]) for p in (layout.live_root, layout.staging_root)  # noqa: E731
                           for v in list_versions(cfg, p))
    before = every()
    plan = etl.rollback(cfg, ids[0], purge_versions=True, dry_run=True)
    assert plan.would_purge and every() == before and "and purge exactly " in str(plan)
    assert {v.split("@")[0] for v in plan.would_purge} <= {k for k, _ in before} - {foreign}
    again = etl.rollback(cfg, ids[0], purge_versions=True)
    assert again.purged == len(plan.would_purge) and set(again.purged_versions) == set(plan.would_purge)
    left = list(list_versions(cfg, layout.live_root)) + list(list_versions(cfg, layout.staging_root))
    assert {v["Key"] for v in left} == {foreign, layout.marker} and len(left) == 3 and again.purged > 0
    assert etl.rollback(cfg, ids[0], purge_versions=True).purged == 0  # a second run finds nothing more


def test_a_purging_rollback_of_a_committed_course_purges_exactly_what_its_dry_run_listed(make_cfg, contentstore):
    from etl.model.layout import Layout, parse_course_id
    from etl.store.versions import list_versions

    ids = build_batch(contentstore, 2)[1:]
    cfg = make_cfg()
    cfg.s3.put_bucket_versioning(Bucket=cfg.bucket, VersioningConfiguration={"Status": "Enabled"})
    probe.probe(cfg)
    etl.migrate(cfg, ids, workers=1)
    layout = Layout(cfg, parse_course_id(ids[0]))
    plan = etl.rollback(cfg, ids[0], force=True, purge_versions=True, dry_run=True)
    known = {v for v in plan.would_purge if "@(" not in v}
    result = etl.rollback(cfg, ids[0], force=True, purge_versions=True)
    assert result.purged == len(plan.would_purge) and known <= set(result.purged_versions)
    assert result.noncurrent == 0 and result.delete_markers == 0 and "versioned" not in str(result)
    left = [v for p in (layout.live_root, layout.staging_root) for v in list_versions(cfg, p)]
    assert [(v["Key"], v["IsLatest"]) for v in left] == [(layout.marker, True)]  # only the release, current
    again = etl.rollback(cfg, ids[0], force=True, purge_versions=True, dry_run=True)
    assert again.would_purge == [] and etl.rollback(cfg, ids[0], force=True, purge_versions=True).purged == 0
