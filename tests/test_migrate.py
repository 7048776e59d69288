import json
import os
import signal
import subprocess
import sys

import pytest

import etl
from etl.protocol import marker
from etl.store import s3
from etl.model.layout import Layout, parse_course_id
from etl.demo.sample import register_course, save_asset, sjson, cues
from tests.batch import WHEN, build_batch, source_transcripts
from tests.helpers import commit_doc, listing, live_prefix, objects, live_objects
from tests.s3proxy import FaultProxy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_promoted_exactly_once(cfg, db, ids):
    """Every course committed by one run: one marker, every live object from the marker's run,
    live == contentstore byte for byte, a promoted record and event for that run; no staging left."""
    for course_id in ids:
        prefix = live_prefix(cfg, course_id)
        live = objects(cfg, prefix)
        expected = source_transcripts(db, course_id)
        assert {k[len(prefix):]: v for k, v in live.items()} == \
            {etl.model.layout.quote_segment(n): b for n, b in expected.items()}, course_id
        run = commit_doc(cfg, course_id)["run_id"]
        runs = {cfg.s3.head_object(Bucket=cfg.bucket, Key=k)["Metadata"]["etl-run-id"] for k in live}
        assert runs <= {run}, (course_id, run, runs)
        record = etl.protocol.state.read(cfg, parse_course_id(course_id))[0]
        assert (record["state"], record["run_id"]) == ("promoted", run), course_id
        promoted = [e for e in record["history"] if e["event"] == "promoted"]
        assert promoted and promoted[-1]["run_id"] == run, (course_id, record["history"])
        assert etl.verify(cfg, course_id).ok, course_id
    assert listing(cfg, cfg.staging_prefix + "/") == {}


def test_a_batch_of_mixed_courses_migrates_and_a_rerun_skips_them(cfg, contentstore):
    ids = build_batch(contentstore, 56)
    summary = etl.migrate(cfg, ids, workers=4)
    assert summary.ok and summary.count("promoted") == 56, summary.text()
    assert summary.transcripts == sum(len(source_transcripts(contentstore, c)) for c in ids)
    assert set(summary.courses["ready"]) == {True}
    assert_promoted_exactly_once(cfg, contentstore, ids)
    again = etl.migrate(cfg, ids, workers=4)
    assert again.count("skipped") == 56 and again.count("promoted") == 0
    zero = [c for i, c in enumerate(ids) if i % 7 == 0 and i % 10 != 3]
    assert all(commit_doc(cfg, c)["transcripts"] == 0 for c in zero)


def child(cfg, n, workers, kill_at=None):
    env = dict(os.environ, **({"ETL_FAULT_AT": str(kill_at), "ETL_FAULT_ACTION": "kill"} if kill_at else {}))
    return subprocess.Popen([sys.executable, "-m", "tests.children.batch", cfg.s3_endpoint_url, cfg.bucket,
                             str(n), str(workers)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def commits(cfg):
    """Return the marker keys that hold a commit (not a runner's fence)."""
    return {k for k in listing(cfg, cfg.live_prefix + "/")
            if k.endswith("_COMMIT.json") and s3.head(cfg, k)["Metadata"].get(marker.META_STATUS) == marker.COMMITTED}


def test_a_batch_killed_mid_way_and_rerun_promotes_every_course_exactly_once(cfg, contentstore):
    n = 40
    proc = child(cfg, n, 3, kill_at=300)  # SIGKILL at its 300th call: a third of the way, whatever the machine
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, "the batch finished before it could be killed"
    markers_before = commits(cfg)
    assert 1 <= len(markers_before) < n
    ids = build_batch(contentstore, n)  # the same deterministic contentstore, rebuilt here
    summary = etl.migrate(cfg, ids, workers=3)
    assert summary.ok, summary.text()
    assert summary.count("skipped") >= len(markers_before)
    assert summary.count("promoted") + summary.count("skipped") == n
    assert_promoted_exactly_once(cfg, contentstore, ids)


def test_two_concurrent_runners_share_the_work_and_each_course_is_promoted_once(cfg, contentstore):
    n = 24
    procs = [child(cfg, n, 3) for _ in range(2)]
    outcomes = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        totals = json.loads(out.splitlines()[-2])
        assert totals["claimed"] == 0 and totals["failed"] == 0, totals  # each waited for the other's courses
        outcomes.append(json.loads(out.splitlines()[-1]))
    ids = build_batch(contentstore, n)
    for course_id in ids:
        results = sorted(o[course_id] for o in outcomes)
        assert results.count("promoted") == 1, (course_id, results)
        assert set(results) <= {"promoted", "skipped"}
    assert_promoted_exactly_once(cfg, contentstore, ids)


def test_a_course_that_fails_twice_succeeds_on_retry_and_one_that_keeps_failing_is_left_failed(
        make_cfg, contentstore, s3_endpoint):
    ids = build_batch(contentstore, 6)
    flaky, broken = ids[1], ids[2]
    with FaultProxy(s3_endpoint) as proxy:
        cfg = make_cfg(s3_endpoint_url=proxy.url)
        proxy.fail("PUT", f"/staging/{flaky}/", times=2)
        proxy.fail("PUT", f"/staging/{broken}/")
        summary = etl.migrate(cfg, ids, workers=2, retries=2)
    rows = summary.courses.set_index("course_id")
    assert rows.loc[flaky, "outcome"] == "promoted" and rows.loc[flaky, "attempts"] == 3
    assert rows.loc[broken, "outcome"] == "failed" and rows.loc[broken, "attempts"] == 3
    assert "AccessDenied" in rows.loc[broken, "error"] and broken in rows.loc[broken, "error"]
    assert not summary.ok and summary.count("promoted") == 5
    cfg = make_cfg()
    layout = Layout(cfg, parse_course_id(broken))
    assert live_objects(cfg, layout) == {} and objects(cfg, layout.staging_root) == {}
    assert etl.status(cfg, broken).loc[0, "state"] == "failed"


def test_dry_run_writes_nothing_and_prints_the_plan(cfg, contentstore, tmp_path):
    ids = build_batch(contentstore, 12)
    etl.migrate(cfg, ids[:4], workers=2)  # some promoted
    etl.extract(cfg, ids[5])  # one staged
    conflict = ids[6]
    cfg.s3.put_object(Bucket=cfg.bucket, Key=Layout(cfg, parse_course_id(conflict)).live_key(1, "x.srt"), Body=b"x")
    save_asset(contentstore, ids[7], "subs_broken.srt.sjson", b"{not json", upload_date=WHEN)
    before = listing(cfg)
    manifests_before = sorted(os.listdir(cfg.manifest_dir))
    plan = etl.migrate(cfg, ids, workers=3, dry_run=True)
    assert listing(cfg) == before
    assert sorted(os.listdir(cfg.manifest_dir)) == manifests_before
    rows = plan.courses.set_index("course_id")
    assert set(rows.loc[ids[:4], "outcome"]) == {"skipped"}
    assert rows.loc[conflict, "outcome"] == "conflict"
    assert rows.loc[ids[7], "parse_problems"] == 1
    assert plan.count("migrate") == 7
    assert rows.loc[ids[8], "transcripts"] == len(source_transcripts(contentstore, ids[8]))
    assert "dry run: nothing was written" in plan.text()
    table = plan.text().split("course by course:", 1)[1]
    for course_id in ids:
        assert course_id in table
    assert f"{ids[8]}" in table and "skip: promoted" in table and "refuse: conflict" in table


def test_all_finds_modulestore_and_contentstore_courses_and_lists_unresolved(cfg, contentstore):
    register_course(contentstore, "course-v1:Known+Empty+2026")  # no transcripts at all
    register_course(contentstore, "Old/Course/Run_A")
    save_asset(contentstore, "Old/Course/Run_A", "subs_a.srt.sjson", sjson(cues(2)))
    save_asset(contentstore, "course-v1:Orphan+Assets+2020", "subs_b.srt.sjson", sjson(cues(2)))  # no course doc
    save_asset(contentstore, "Lost/Course/Whatever", "subs_c.srt.sjson", sjson(cues(2)))  # old-style, no doc
    contentstore["modulestore.active_versions"].insert_one({"org": "Lib", "course": "L1", "run": "library"})
    summary = etl.migrate(cfg, "all", workers=2)
    assert sorted(summary.courses["course_id"]) == [
        "Old/Course/Run_A", "course-v1:Known+Empty+2026", "course-v1:Orphan+Assets+2020"]
    assert summary.count("promoted") == 3
    assert [u["what"] for u in summary.unresolved] == ["Lost/Course/?"]
    assert "unresolved: Lost/Course/?" in summary.text()
    assert etl.verify(cfg, "course-v1:Known+Empty+2026").ok


def test_report_matches_the_truth(make_cfg, contentstore, s3_endpoint):
    ids = build_batch(contentstore, 5)
    cfg = make_cfg()
    etl.migrate(cfg, ids[:2], workers=2)
    with FaultProxy(s3_endpoint) as proxy:
        proxy.fail("PUT", f"/staging/{ids[3]}/")
        etl.migrate(make_cfg(s3_endpoint_url=proxy.url), [ids[3]], retries=0)
    df = etl.report(cfg).set_index("course_id")
    assert list(df.index) == sorted(ids)
    for c in ids[:2]:
        assert df.loc[c, "ready"] and df.loc[c, "state"] == "promoted"
        assert df.loc[c, "contentstore_count"] == df.loc[c, "live_count"] == df.loc[c, "marker_count"]
    assert not df.loc[ids[3], "ready"] and df.loc[ids[3], "state"] == "failed"
    assert "AccessDenied" in df.loc[ids[3], "last_error"]
    never = ids[4]
    assert not df.loc[never, "ready"] and df.loc[never, "live_count"] == 0
    assert df.loc[never, "contentstore_count"] == len(source_transcripts(contentstore, never))


def test_retries_are_spent_only_on_failures_a_retry_can_fix(cfg, contentstore):
    from tests.test_contentstore import corrupt

    ids = build_batch(contentstore, 3)
    corrupt(contentstore, ids[1], "subs_zz_corrupt.srt.sjson", "wrong md5")
    summary = etl.migrate(cfg, ids, workers=1, retries=3)
    rows = summary.courses.set_index("course_id")
    assert rows.loc[ids[1], "outcome"] == "failed" and rows.loc[ids[1], "attempts"] == 1
    assert "corrupt" in rows.loc[ids[1], "error"]
    assert etl.CorruptSource.transient is False and etl.InvalidId.transient is False and etl.Conflict.transient is False
    assert etl.StorageError.transient and etl.ConcurrentRun.transient and etl.SourceChanged.transient
    with pytest.raises(etl.BatchFailed, match="1 of 3 courses failed") as err:
        summary.check()
    assert err.value.exit_code == 4


def test_an_edit_that_lands_just_before_the_commit_is_seen_by_migrate_s_verify(cfg, contentstore):
    """The source check passed; the edit lands while the marker is put: the course is promoted, not ready."""
    course_id = build_batch(contentstore, 2)[1]

    def edit_during_commit(params, **_):
        if params.get("Key", "").endswith("_COMMIT.json") and b'"committed"' in params.get("Body", b""):
            save_asset(contentstore, course_id, "subs_video0.srt.sjson", b'{"start": [0], "end": [1], "text": ["x"]}',
                       "application/json", upload_date=WHEN)

    cfg.s3.meta.events.register("before-parameter-build.s3.PutObject", edit_during_commit)
    row = etl.migrate(cfg, [course_id], workers=1, retries=0).courses.iloc[0]
    assert row["outcome"] == "promoted" and row["ready"] == False, row.to_dict()  # noqa: E712
    assert "edited in the contentstore since promote" in row["error"]


def test_a_course_whose_verify_fails_is_reported_and_the_batch_goes_on(cfg, contentstore, monkeypatch):
    ids = build_batch(contentstore, 4)
    etl.migrate(cfg, ids[:2], workers=1)
    batch = sys.modules["etl.batch.unit"]  # the module that runs one course, and calls verify
    real = batch.verify

    def flaky(cfg, course_id):
        if course_id == ids[0]:
            raise etl.StorageError(f"S3 GetObject s3://{cfg.bucket}/x failed: 500; check the bucket, then re-run")
        return real(cfg, course_id)

    monkeypatch.setattr(batch, "verify", flaky)
    summary = etl.migrate(cfg, ids, workers=2)
    rows = summary.courses.set_index("course_id")
    assert len(rows) == 4 and summary.count("promoted") == 2 and summary.count("skipped") == 2
    assert rows.loc[ids[0], "ready"] == False and "verify failed" in rows.loc[ids[0], "error"]  # noqa: E712
    assert summary.exit_code == 5 and "not ready" in summary.text()
