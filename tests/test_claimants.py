"""Every writer is a claimant: each flaw an adversarial review of 0.7.0 reproduced, now held.

Each test is the review's interleaving, made deterministic with frozen runners
(``tests/freeze.py``: a hook on a runner's own clients, its heartbeat's too),
an injected lease clock and the fault proxy (``tests/s3proxy.py``), against
moto's server. After each, the course is fully committed (every object its
commit names is there and verifies) or converges on one more ``migrate``.
"""

import json

import pytest

import etl
from etl.model.layout import Layout, new_run_id, parse_course_id
from etl.protocol import claims, marker, state
from etl.store import probe, s3
from tests.batch import build_course
from tests.freeze import Freezer, Runner, put_of
from tests.helpers import assert_finished_by_rerun, assert_invariant, objects
from tests.s3proxy import FaultProxy

NEW = "course-v1:Claim+Ants+2026"
COMMIT = '"manifest_sha256"'  # only a commit's body has it


def expired(make_cfg, seconds=None):
    """Return a Config whose lease clock reads every lease taken so far as expired."""
    cfg = make_cfg()
    cfg.clock.advance(seconds or cfg.lease_seconds + 1)
    return cfg


def test_vacuum_never_deletes_the_epoch_whose_fence_stands_while_a_frozen_runner_may_still_commit(
        make_cfg, contentstore):
    build_course(contentstore, NEW, n=3)
    etl.extract(make_cfg(), NEW)  # e1, staged
    cfg_a = make_cfg()
    layout = Layout(cfg_a, parse_course_id(NEW))
    a_freezer = Freezer(cfg_a, before=put_of(layout.marker, COMMIT))  # A claims e2, copies, stops before its commit
    a = Runner(lambda: etl.promote(cfg_a, NEW))
    a.start()
    a_freezer.wait()
    cfg_b = expired(make_cfg)  # A's lease lapsed: B writes the record at e3 and freezes before its fence
    b_freezer = Freezer(cfg_b, after=put_of(layout.record))
    b = Runner(lambda: etl.promote(cfg_b, NEW))
    b.start()
    b_freezer.wait()
    vacuum = etl.vacuum(expired(make_cfg, 2 * cfg_b.lease_seconds), NEW, retain_days=0)
    assert 2 in vacuum.kept and "its fence stands" in vacuum.kept[2] and vacuum.deleted == 0
    a_freezer.release()  # A's commit lands on its own fence: the course is committed at e2, whole
    assert a.outcome() == "ok"
    b_freezer.release()  # B's fence finds the commit: it hands the record back to it
    assert b.outcome() == "AlreadyPromoted"
    cfg = make_cfg()
    assert etl.committed(cfg, NEW)["epoch"] == 2
    assert assert_invariant(cfg, contentstore, NEW) == "committed" and etl.verify(cfg, NEW).ok
    etl.vacuum(cfg, NEW, retain_days=0)
    assert etl.verify(cfg, NEW).ok


def test_one_lost_heartbeat_answer_is_read_back_as_the_runners_own_not_a_loss(make_cfg, contentstore, s3_endpoint):
    build_course(contentstore, NEW, n=3)
    course = parse_course_id(NEW)
    with FaultProxy(s3_endpoint) as proxy:
        cfg = make_cfg(s3_endpoint_url=proxy.url)
        claim = claims.claim(cfg, course, new_run_id(), state.EXTRACTING)
        claim.stop()
        record = Layout(cfg, course).record
        proxy.reset("PUT", record, after_forward=True, times=1)  # the renewal lands; its answer is lost
        proxy.fail("PUT", record, status=503, code="SlowDown", times=1)  # and its retry is refused
        proxy.fail("HEAD", record, status=503, code="SlowDown", times=4)  # nor can it be read back now
        claim.beat()
        assert proxy.injected == {"reset_after": 1, "503": 5} and claim.lost is None
        claim.move(state.FAILED, error="the test ends the run")  # 412 on the stale ETag: read back, its own
    assert claim.lost is None and state.read(make_cfg(), course)[0]["state"] == "failed"


def test_a_real_loss_never_deletes_the_staged_run_another_runner_rolls_forward(make_cfg, contentstore):
    from etl.batch.unit import migrate_course

    build_course(contentstore, NEW, n=3)
    cfg_a = make_cfg()
    layout = Layout(cfg_a, parse_course_id(NEW))
    a_freezer = Freezer(cfg_a, before=put_of(layout.marker, COMMIT))  # migrate: e1 staged, promoting, not committed
    a = Runner(lambda: migrate_course(cfg_a, NEW, retries=0)["outcome"])
    a.start()
    a_freezer.wait()
    staged = objects(make_cfg(), layout.staging_epoch(1))
    assert staged and state.read(make_cfg(), parse_course_id(NEW))[0]["staged_epoch"] == 1
    cfg_b = expired(make_cfg)  # B takes over and rolls e1 forward: frozen once its fence stands
    b_freezer = Freezer(cfg_b, after=put_of(layout.marker, '"fenced"'))
    b = Runner(lambda: migrate_course(cfg_b, NEW, retries=0)["outcome"])
    b.start()
    b_freezer.wait()
    a_freezer.release()  # A's commit meets 412: it lost the course, and leaves the staged run B is rolling on
    assert a.outcome() == "ok" and a.result == "claimed"
    assert objects(make_cfg(), layout.staging_epoch(1)) == staged
    b_freezer.release()
    assert b.outcome() == "ok" and b.result == "promoted"
    assert assert_invariant(make_cfg(), contentstore, NEW) == "committed"
    assert "failed" not in etl.history(make_cfg(), NEW)["event"].tolist()


def test_vacuum_keeps_an_in_doubt_courses_staged_run_for_the_roll_forward(make_cfg, contentstore, s3_endpoint):
    from tests.test_in_doubt import on_commit

    build_course(contentstore, NEW, n=3)
    etl.extract(make_cfg(), NEW)  # e1, staged
    layout = Layout(make_cfg(), parse_course_id(NEW))
    with FaultProxy(s3_endpoint) as proxy:
        cfg = make_cfg(s3_endpoint_url=proxy.url, retry_attempts=2)

        def cut_off_the_key(request, **_):  # the commit never lands, and from then on the key answers nothing
            if request.context.get("commit"):
                for method in ("GET", "HEAD", "PUT"):
                    proxy.fail(method, "/_COMMIT.json", status=503, code="SlowDown")

        on_commit(cfg, cut_off_the_key)
        with pytest.raises(etl.InDoubt):
            etl.promote(cfg, NEW)
    cfg = make_cfg()
    assert state.read(cfg, parse_course_id(NEW))[0]["state"] == "in_doubt"
    staged = objects(cfg, layout.staging_epoch(1))
    result = etl.vacuum(cfg, NEW, retain_days=0)
    assert "in_doubt" in result.kept[1] and "its fence still stands" in result.kept[2]
    assert result.deleted == 0 and objects(cfg, layout.staging_epoch(1)) == staged
    summary = etl.migrate(cfg, [NEW], workers=1, retries=0)
    assert summary.courses.iloc[0]["outcome"] == "promoted", summary.text()
    assert_finished_by_rerun(cfg, contentstore, NEW)


def test_a_0_3_0_commit_reasserted_after_a_stranded_forced_rollback_names_its_prefix_and_manifest(
        make_cfg, contentstore, s3_endpoint):
    from tests.test_upgrade import as_0_3_0

    build_course(contentstore, NEW, n=3)
    cfg = make_cfg()
    etl.migrate(cfg, [NEW], workers=1)
    layout = as_0_3_0(cfg, NEW)
    with FaultProxy(s3_endpoint) as proxy:  # the forced rollback takes epoch 1; its fence PUT fails
        proxy.fail("PUT", "/_COMMIT.json", status=500, code="InternalError")
        with pytest.raises(etl.StorageError):
            etl.rollback(make_cfg(s3_endpoint_url=proxy.url, retry_attempts=1), NEW, force=True)
    summary = etl.migrate(expired(make_cfg), [NEW], workers=1)  # repair: the commit is reasserted at _COMMIT.json
    assert summary.courses.iloc[0]["outcome"] == "skipped", summary.text()
    doc = json.loads(objects(cfg, layout.marker)[layout.marker])
    assert doc["status"] == "committed" and doc["epoch"] == 0
    assert doc["transcripts_prefix"] == layout.legacy_transcripts and doc["manifest_key"] == layout.legacy_manifest
    assert etl.committed(cfg, NEW) == {k: v for k, v in doc.items()} and etl.verify(cfg, NEW).ok


def test_one_promote_builds_its_layout_once_and_reads_the_record_and_the_commit_key_at_most_twice(
        make_cfg, contentstore, monkeypatch):
    from etl.model import layout as layouts

    build_course(contentstore, NEW, n=3)
    etl.extract(make_cfg(), NEW)
    cfg = make_cfg()
    probe.probe(cfg)
    key = Layout(cfg, parse_course_id(NEW))
    built, gets = [], []
    original = layouts.Layout.__init__
    monkeypatch.setattr(layouts.Layout, "__init__", lambda self, *a: (built.append(1), original(self, *a))[1])
    cfg.s3.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **_: gets.append(params["Key"]))
    etl.promote(cfg, NEW)
    assert len(built) == 1, "the course's Layout is built once"
    assert gets.count(key.record) <= 2 and gets.count(key.marker) <= 2, gets
    assert etl.verify(make_cfg(), NEW).ok


def test_a_claim_refuses_a_move_its_status_does_not_allow(make_cfg):
    cfg = make_cfg()
    claim = claims.claim(cfg, parse_course_id(NEW), new_run_id(), state.EXTRACTING)
    claim.stop()
    assert claim.status == claim.FENCED and claim.token
    with pytest.raises(etl.EtlError, match="cannot fence its claim while it is fenced"):
        claim.fenced("another token")
    claims.release_fence(claim, "failed")
    assert claim.status == claim.RELEASED and marker.read(cfg, parse_course_id(NEW)).holds == marker.RELEASED
    with pytest.raises(etl.EtlError, match="cannot commit its claim while it is released"):
        claim.committed()
    assert s3.head(cfg, Layout(cfg, parse_course_id(NEW)).record) is not None
