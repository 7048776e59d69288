"""In-doubt commits and the commit key: a lost answer is never undone, no guarantee rests on a conditional DELETE,
a stale fence never strands a course, and a claim that was taken over never commits.

Each test reproduces a way 0.5.0 broke "a commit marker never points at missing
data": on moto's server, through the fault proxy (``tests/s3proxy.py``) where
the network is to blame, and with deterministic freezes (``tests/freeze.py``)
where another runner is.
"""

import json

import pytest

import etl
from etl.model.layout import Layout, parse_course_id
from etl.protocol import marker, state
from etl.store import probe
from tests.batch import build_course
from tests.freeze import Freezer, Runner, put_of
from tests.helpers import assert_finished_by_rerun, assert_invariant, listing, objects
from tests.s3proxy import FaultProxy

NEW, OLD = "course-v1:Doubt+Commit+2026", "Doubt/Commit/2026"
COMMIT = '"manifest_sha256"'  # only a commit's body has it


def outcome(summary):
    row = summary.courses.iloc[0]
    return row["outcome"], row["error"]


def on_commit(cfg, hook):
    """Call ``hook(request)`` at each attempt of the commit's PUT, before the lease guard is consulted."""
    def mark(params, context, **_):
        body = params.get("Body")
        context["commit"] = isinstance(body, bytes) and COMMIT.encode() in body

    cfg.s3.meta.events.register("before-parameter-build.s3.PutObject", mark)
    cfg.s3.meta.events.register("request-created.s3.PutObject", hook)


def assert_committed_and_whole(cfg, db, course_id):
    """The course is committed, verifies byte for byte, and its record says promoted."""
    assert assert_invariant(cfg, db, course_id) == "committed"
    assert state.read(cfg, parse_course_id(course_id))[0]["state"] == "promoted"


@pytest.mark.parametrize("course_id", [NEW, OLD])
def test_a_commit_that_landed_but_whose_answer_and_retries_were_lost_is_committed_not_undone(
        make_cfg, contentstore, s3_endpoint, course_id):
    import logging

    said = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: said.append(record.getMessage())
    logger = logging.getLogger("etl")
    level = logger.level
    logger.addHandler(handler)  # whatever an earlier CLI run in this process set up
    logger.setLevel(logging.WARNING)
    build_course(contentstore, course_id, n=3)
    with FaultProxy(s3_endpoint) as proxy:
        proxy.reset("PUT", "/_COMMIT.json", after_forward=True, times=1, body_contains=COMMIT)  # landed, unheard
        proxy.fail("PUT", "/_COMMIT.json", status=503, code="SlowDown", body_contains=COMMIT)  # every retry
        summary = etl.migrate(make_cfg(s3_endpoint_url=proxy.url, retry_attempts=3), [course_id], workers=1,
                              retries=0)
        assert proxy.injected["reset_after"] == 1 and proxy.injected["503"] >= 2  # every retry refused
    assert outcome(summary)[0] == "promoted", summary.text()
    logger.removeHandler(handler)
    logger.setLevel(level)
    assert any("event=write_confirmed" in line and "_COMMIT.json" in line for line in said), said
    cfg = make_cfg()
    assert_committed_and_whole(cfg, contentstore, course_id)
    assert_finished_by_rerun(cfg, contentstore, course_id)


def test_a_commit_whose_retry_the_lease_guard_blocks_is_committed_not_undone(make_cfg, contentstore, s3_endpoint):
    build_course(contentstore, NEW, n=3)
    with FaultProxy(s3_endpoint) as proxy:
        proxy.reset("PUT", "/_COMMIT.json", after_forward=True, times=1, body_contains=COMMIT)
        cfg = make_cfg(s3_endpoint_url=proxy.url)
        attempts = []

        def expire_before_the_retry(request, **_):  # runs before the guard's before-send check
            if request.context.get("commit"):
                attempts.append(1)
                if len(attempts) == 2:
                    cfg.clock.advance(cfg.lease_seconds + 1)

        on_commit(cfg, expire_before_the_retry)
        summary = etl.migrate(cfg, [NEW], workers=1, retries=0)
    assert len(attempts) == 2 and outcome(summary)[0] == "promoted", summary.text()
    assert_committed_and_whole(make_cfg(), contentstore, NEW)


def test_a_commit_that_cannot_be_read_back_leaves_everything_in_place_and_the_next_run_finishes(
        make_cfg, contentstore, s3_endpoint):
    build_course(contentstore, NEW, n=3)
    layout = Layout(make_cfg(), parse_course_id(NEW))
    with FaultProxy(s3_endpoint) as proxy:
        cfg = make_cfg(s3_endpoint_url=proxy.url, retry_attempts=2)

        def cut_off_the_key(request, **_):  # from the commit on, the commit key answers nothing
            if request.context.get("commit"):
                for method in ("GET", "HEAD", "PUT"):
                    proxy.fail(method, "/_COMMIT.json", status=503, code="SlowDown")

        proxy.reset("PUT", "/_COMMIT.json", after_forward=True, times=1, body_contains=COMMIT)
        on_commit(cfg, cut_off_the_key)
        summary = etl.migrate(cfg, [NEW], workers=1, retries=0)
    got, error = outcome(summary)
    assert got == "in_doubt" and summary.exit_code == 3, summary.text()
    assert error.startswith(f"course {NEW}: run ") and "in doubt" in error and f"etl migrate {NEW}" in error
    direct = make_cfg()
    record = state.read(direct, parse_course_id(NEW))[0]
    assert record["state"] == "in_doubt" and record["staged_epoch"] == record["epoch"]
    assert etl.committed(direct, NEW) is not None  # it did land: and nothing behind it was deleted
    assert etl.verify(direct, NEW).ok
    assert listing(direct, layout.staging_root)  # the staging run was kept too
    assert_finished_by_rerun(direct, contentstore, NEW)  # from S3 alone
    assert state.read(direct, parse_course_id(NEW))[0]["state"] == "promoted"


def test_a_commit_that_did_not_land_is_released_before_anything_is_undone(make_cfg, contentstore, s3_endpoint):
    build_course(contentstore, NEW, n=3)
    with FaultProxy(s3_endpoint) as proxy:
        proxy.fail("PUT", "/_COMMIT.json", status=503, code="SlowDown", body_contains=COMMIT)
        summary = etl.migrate(make_cfg(s3_endpoint_url=proxy.url, retry_attempts=2), [NEW], workers=1, retries=0)
    assert outcome(summary)[0] == "failed" and "SlowDown" in outcome(summary)[1]
    cfg = make_cfg()
    seen = marker.read(cfg, parse_course_id(NEW))
    assert seen.holds == "released" and seen.doc["reason"] == "failed"  # a late commit request can never land
    assert assert_invariant(cfg, contentstore, NEW) == "not committed"
    assert_finished_by_rerun(cfg, contentstore, NEW)


def test_a_store_that_ignores_if_match_on_delete_is_learned_and_never_deletes_a_newer_commit(
        make_cfg, contentstore, s3_endpoint):
    """Runner A rolls back and pauses before its release; B migrates and commits; A wakes: B's commit stays."""
    build_course(contentstore, NEW, n=3)
    etl.extract(make_cfg(), NEW)
    with FaultProxy(s3_endpoint) as proxy:
        proxy.behave(strip_on_delete=("If-Match",))
        cfg_a = make_cfg(s3_endpoint_url=proxy.url)
        probe._seen.pop((cfg_a.s3_endpoint_url, cfg_a.bucket), None)
        store = probe.probe(cfg_a)
        assert not store.conditional_delete and "If-Match on DELETE ignored" in store.describe()
        layout = Layout(cfg_a, parse_course_id(NEW))
        freezer = Freezer(cfg_a, before=put_of(layout.marker, '"released"'))
        a = Runner(lambda: etl.rollback(cfg_a, NEW))
        a.start()
        freezer.wait()
        cfg_b = make_cfg()
        assert outcome(etl.migrate(cfg_b, [NEW], workers=1, retries=0))[0] == "promoted"
        committed = objects(cfg_b, layout.live_root)
        freezer.release()
        assert a.outcome() == "ok"
        assert proxy.injected.get("stripped_on_delete", 0) > 0
    assert objects(cfg_b, layout.live_root) == committed
    assert_committed_and_whole(cfg_b, contentstore, NEW)


@pytest.mark.parametrize("course_id", [NEW, OLD])
def test_a_forced_rollback_frozen_before_its_fence_can_never_fence_a_commit_another_runner_caught_up(
        make_cfg, contentstore, course_id):
    build_course(contentstore, course_id, n=3)
    etl.migrate(make_cfg(), [course_id], workers=1, retries=0)
    cfg_a = make_cfg()
    layout = Layout(cfg_a, parse_course_id(course_id))
    freezer = Freezer(cfg_a, before=put_of(layout.marker, '"fenced"'))  # claimed (record, epoch 2), not fenced
    a = Runner(lambda: etl.rollback(cfg_a, course_id, force=True))
    a.start()
    freezer.wait()
    cfg_b = make_cfg()
    cfg_b.clock.advance(cfg_b.lease_seconds + 1)
    assert outcome(etl.migrate(cfg_b, [course_id], workers=1, retries=0))[0] == "skipped"
    committed = objects(cfg_b, layout.live_root)
    freezer.release()
    assert a.outcome() == "ConcurrentRun" and "nothing was deleted" in str(a.error)
    after = objects(cfg_b, layout.live_root)
    assert after.keys() == committed.keys()
    assert {k: v for k, v in after.items() if k != layout.marker} == {
        k: v for k, v in committed.items() if k != layout.marker}
    assert json.loads(after[layout.marker])["status"] == "committed"
    assert_committed_and_whole(cfg_b, contentstore, course_id)
    assert_finished_by_rerun(cfg_b, contentstore, course_id)


def test_a_claim_that_was_taken_over_never_commits_even_when_its_fence_lands_first(make_cfg, contentstore):
    """A writes its record and freezes; B takes the course over; A's fence lands before B's: B's fence replaces it."""
    build_course(contentstore, NEW, n=3)
    etl.extract(make_cfg(), NEW)
    cfg_a, cfg_b = make_cfg(), make_cfg()
    layout = Layout(cfg_a, parse_course_id(NEW))
    after_record = Freezer(cfg_a, after=put_of(layout.record))
    before_commit = Freezer(cfg_a, before=put_of(layout.marker, COMMIT))
    a = Runner(lambda: etl.promote(cfg_a, NEW))
    a.start()
    after_record.wait()
    cfg_b.clock.advance(cfg_b.lease_seconds + 1)
    b_fence = Freezer(cfg_b, before=put_of(layout.marker, '"fenced"'))
    b = Runner(lambda: etl.migrate(cfg_b, [NEW], workers=1, retries=0))
    b.start()
    b_fence.wait()  # B's record write has landed: B holds the course
    after_record.release()
    before_commit.wait()  # A's fence landed, its copies are made
    b_fence.release()
    assert b.outcome() == "ok" and outcome(b.result)[0] == "promoted", b.result.text()
    before_commit.release()
    assert a.outcome() == "ConcurrentRun"
    doc = etl.committed(cfg_b, NEW)
    assert doc["run_id"] == b.result.courses.iloc[0]["run_id"] and doc["epoch"] == 3
    history = etl.history(cfg_b, NEW)
    assert "fence_replaced" in set(history["event"])
    assert_committed_and_whole(cfg_b, contentstore, NEW)


@pytest.mark.parametrize("key", ["marker", "legacy_marker"])
@pytest.mark.parametrize("body", [b"\x00not json at all", b'["a", "list"]'])
def test_an_object_the_tool_did_not_write_at_the_commit_key_is_refused_and_never_deleted(
        make_cfg, contentstore, key, body, tmp_path, capsys):
    from tests.helpers import run_cli

    build_course(contentstore, NEW, n=2)
    cfg = make_cfg()
    layout = Layout(cfg, parse_course_id(NEW))
    where = getattr(layout, key)
    cfg.s3.put_object(Bucket=cfg.bucket, Key=where, Body=body)
    for verb in (["extract", NEW], ["rollback", NEW, "--force"], ["vacuum", NEW], ["promote", NEW]):
        code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, *verb)
        assert code == 2, (verb, err)
        assert f"{where} ({len(body)} bytes)" in err and "internal error" not in err, err
    summary = etl.migrate(cfg, [NEW], workers=1, retries=0)
    assert outcome(summary)[0] == "refused" and summary.exit_code == 2
    assert etl.migrate(cfg, [NEW], workers=1, retries=0, dry_run=True).courses.iloc[0]["outcome"] == "refused"
    assert listing(cfg, layout.live_root).keys() == {where} and listing(cfg, layout.staging_root) == {}
    assert objects(cfg, where)[where] == body
    assert etl.committed(cfg, NEW) is None and not etl.verify(cfg, NEW).ok
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "report")
    assert code in (0, 5) and "internal error" not in err


def test_a_long_unicode_course_id_migrates_and_its_local_manifest_name_fits_any_file_system(
        make_cfg, contentstore, tmp_path):
    course_id = "course-v1:" + "字幕" * 16 + "字+Cs+Run-2026"
    assert len(course_id) == 55 and len(parse_course_id(course_id).segment) > 255  # 33 CJK letters, 9 bytes each
    build_course(contentstore, course_id, n=2)
    cfg = make_cfg(manifest_dir=str(tmp_path / "local"))
    result = etl.extract(cfg, course_id)
    assert result.local_manifest and all(len(part.encode()) <= 255 for part in result.local_manifest.split("/"))
    assert result.local_manifest.startswith(str(tmp_path / "local" / cfg.bucket))
    etl.promote(cfg, course_id)
    assert etl.verify(cfg, course_id).ok


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_an_empty_manifest_dir_keeps_no_local_copies(make_cfg, contentstore, tmp_path, monkeypatch, how):
    import os

    from etl.cli.main import main
    from etl.model.config import config_from_env

    build_course(contentstore, NEW, n=2)
    cfg = make_cfg()
    monkeypatch.chdir(tmp_path)
    if how == "flag":
        main(["extract", NEW, "--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url,
              "--manifest-dir", "", "--quiet"], contentstore=contentstore)  # returns on success
    else:
        monkeypatch.setenv("ETL_MANIFEST_DIR", "")
        env_cfg = config_from_env({"bucket": cfg.bucket, "s3_endpoint_url": cfg.s3_endpoint_url}, progress=False)
        env_cfg.contentstore = contentstore
        assert env_cfg.manifest_dir == ""
        assert etl.extract(env_cfg, NEW).local_manifest == ""
    assert etl.status(cfg, NEW)["state"].tolist() == ["staged"]
    assert os.listdir(tmp_path) == []


def test_vacuum_reads_ages_from_s3_s_clock_never_the_host_s(make_cfg, contentstore):
    """A dead epoch written seconds ago stays under the default retention; only S3's clock can make it old."""
    from email.utils import format_datetime
    from datetime import datetime, timedelta, timezone

    from etl.store import s3 as s3mod

    build_course(contentstore, NEW, n=2)
    cfg = make_cfg()
    etl.extract(cfg, NEW)
    etl.extract(cfg, NEW)
    etl.promote(cfg, NEW)  # committed at epoch 3
    layout = Layout(cfg, parse_course_id(NEW))
    dead = layout.live_key(1, "left-over.srt")
    s3mod.put(cfg, dead, b"1\n00:00:01,000 --> 00:00:02,000\nx\n",
              metadata=s3mod.tool_metadata(parse_course_id(NEW), "20260101T000000Z-00000000"))
    assert etl.vacuum(cfg, NEW).deleted == 0  # seconds old, by S3's clock

    ahead = make_cfg()

    def s3_says_eight_days_on(parsed, **_):  # the listing answer's Date: S3's own clock
        when = datetime.now(timezone.utc) + timedelta(days=8)
        parsed["ResponseMetadata"]["HTTPHeaders"]["date"] = format_datetime(when, usegmt=True)

    ahead.s3.meta.events.register("after-call.s3.ListObjectsV2", s3_says_eight_days_on)
    assert etl.vacuum(ahead, NEW).deleted == 1 and dead not in listing(cfg, layout.live_root)
    assert etl.verify(cfg, NEW).ok


def test_a_course_id_too_long_for_any_s3_key_is_refused_with_exit_2_and_nothing_written(
        make_cfg, contentstore, tmp_path, capsys):
    from tests.helpers import run_cli

    course_id = "course-v1:" + "字" * 240 + "+C+R"  # 254 characters edx-opaque-keys accepts: 2,174 bytes quoted
    parse_course_id(course_id)
    build_course(contentstore, NEW, n=1)  # a contentstore the preflight accepts
    cfg = make_cfg()
    for verb in (["extract", course_id], ["migrate", course_id], ["rollback", course_id, "--force"]):
        code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, *verb)
        assert code == 2 and "over S3's 1024" in err and "internal error" not in err, (verb, err)
    assert listing(cfg) == {}
