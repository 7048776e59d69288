"""Freeze a runner after every one of its S3 requests, let another runner commit, wake it: nothing is harmed.

Like the crash sweeps, but the runner comes back. For each S3 request of
``extract``, ``promote``, ``migrate``, a roll-forward (``migrate`` of a staged
course), ``rollback``, ``rollback --force`` and ``vacuum``, runner A freezes
right after that request is answered (``tests/freeze.py``, a hook on A's own
clients, its heartbeat's too), and its lease runs out: runner B's lease clock
is moved on past it, so no test sleeps. B then runs ``migrate``, which commits
the course (or finds it committed), and A wakes, its own clock unchanged, as a
suspended VM's would be: only the epochs and the commit key protect B's work.

After every interleaving nothing of a commit B made has changed (the commit,
its manifest and every transcript of its epoch, byte for byte), nor of one B
found, unless A is a forced rollback that had not claimed the course when it
froze; a committed course verifies and its live transcripts equal the
contentstore, and one that is not has none. An operator's re-run of
``migrate`` then finds it promoted, with no staging, and ``vacuum`` with no
retention leaves no object of a dead epoch.
"""

import uuid

import pytest

import etl
from etl.store.probe import probe
from etl.model.layout import Layout, parse_course_id
from tests.batch import WHEN
from tests.freeze import Freezer, Runner, nth_answer
from tests.helpers import assert_finished_by_rerun, assert_invariant, listing, objects

NEW, OLD = "course-v1:Sweep+Frozen+2026", "Sweep/Frozen/2026"
VERBS = ["extract", "promote", "migrate", "roll-forward", "rollback", "rollback --force", "vacuum"]


def small_course(db, course_id):
    """Register a course with two small transcripts: the sweep is about requests, not bytes."""
    from etl.demo.sample import cues, register_course, save_asset, sjson, srt

    register_course(db, course_id)
    save_asset(db, course_id, "subs_one.srt.sjson", sjson(cues(4, "one")), upload_date=WHEN)
    save_asset(db, course_id, "two-en.srt", srt(cues(3, "two")), upload_date=WHEN)


def prepare(cfg, course_id, verb):
    """Bring the course to where A's verb starts: new, staged, or committed."""
    if verb in ("promote", "rollback", "roll-forward"):
        etl.extract(cfg, course_id)
    elif verb in ("rollback --force", "vacuum"):
        etl.migrate(cfg, [course_id], workers=1, retries=0)


def act(cfg, course_id, verb):
    if verb in ("migrate", "roll-forward"):
        row = etl.migrate(cfg, [course_id], workers=1, retries=0).courses.iloc[0]
        return row["outcome"]
    if verb.startswith("rollback"):
        return etl.rollback(cfg, course_id, force=verb.endswith("--force"))
    if verb == "vacuum":
        return etl.vacuum(cfg, course_id, retain_days=0)
    return getattr(etl, verb)(cfg, course_id)


def the_commit(cfg, course_id):
    """Return the commit and every object of its epoch, byte for byte: what no stale runner may change."""
    doc = etl.committed(cfg, course_id)
    layout = Layout(cfg, parse_course_id(course_id))
    kept = {k: v for k, v in objects(cfg, layout.live_root).items()
            if k.startswith(doc["transcripts_prefix"]) or k == doc["manifest_key"]}
    return {k: doc[k] for k in ("run_id", "epoch", "manifest_sha256", "transcripts")}, kept


def count_requests(make_cfg, contentstore, course_id, verb):
    """Return how many S3 requests A's verb makes on an undisturbed run (with the setup of the sweep)."""
    cfg, root = sweep_cfg(make_cfg)
    probe(cfg)  # once per process and bucket: no point of the sweep would see its requests again
    prepare(cfg, course_id, verb)
    a = sweep_cfg(make_cfg, root)[0]
    counted = []
    a.s3.meta.events.register("after-call.s3.*", lambda **_: counted.append(1))
    act(a, course_id, verb)
    return len(counted)


def sweep_cfg(make_cfg, root=None):
    """Return a Config under a prefix root of its own (one bucket serves the whole sweep), and the root."""
    root = root or f"sweep-{uuid.uuid4().hex[:10]}"
    return make_cfg(staging_prefix=f"{root}/staging", live_prefix=f"{root}/live", state_prefix=f"{root}/state",
                    manifest_dir=None, s3_concurrency=4), root


def finished_by_operator(cfg, db, course_id):
    """An operator re-runs migrate, then vacuums with no retention: one clean committed epoch is all that is left."""
    assert_finished_by_rerun(cfg, db, course_id)
    layout = Layout(cfg, parse_course_id(course_id))
    etl.vacuum(cfg, course_id, retain_days=0)
    doc = etl.committed(cfg, course_id)
    left = set(listing(cfg, layout.live_root))
    assert left == {layout.marker, doc["manifest_key"]} | {k for k in left if k.startswith(doc["transcripts_prefix"])}
    assert {layout.epoch_of(k) for k in left} == {None, doc["epoch"]}


def sweep(make_cfg, contentstore, course_id, verb):
    small_course(contentstore, course_id)
    total = count_requests(make_cfg, contentstore, course_id, verb)
    assert total > 3
    outcomes = {}
    for point in range(1, total + 1):
        cfg_b, root = sweep_cfg(make_cfg)
        prepare(cfg_b, course_id, verb)
        cfg_a = sweep_cfg(make_cfg, root)[0]
        freezer = Freezer(cfg_a, after=nth_answer(point), any_answer=True)
        a = Runner(lambda: act(cfg_a, course_id, verb))
        a.start()
        a.join(0.02)
        while a.is_alive() and not freezer.reached.is_set():
            a.join(0.02)
        cfg_b.clock.advance(cfg_b.lease_seconds + 1)  # A's lease has run out, by S3's clock as B reads it
        b = act(cfg_b, course_id, "migrate")
        assert b in ("promoted", "skipped"), (point, b)
        committed = the_commit(cfg_b, course_id)
        freezer.release()
        outcome = a.outcome()
        assert outcome in ("ok", "ConcurrentRun", "AlreadyPromoted", "NotStaged", "SourceChanged"), (point, a.error)
        state = assert_invariant(cfg_b, contentstore, course_id)
        if b == "promoted" or verb != "rollback --force":
            assert state == "committed" and the_commit(cfg_b, course_id) == committed, (point, b, outcome)
        # else B found the course committed and left it: a forced rollback that had not claimed it yet
        # when it froze runs afterwards as the operator asked, and the course is cleanly absent
        finished_by_operator(cfg_b, contentstore, course_id)
        outcomes[point] = (outcome, state)
    return outcomes


@pytest.mark.parametrize("course_id", [NEW, OLD])
@pytest.mark.parametrize("verb", VERBS)
def test_a_runner_frozen_after_any_request_never_harms_the_runner_that_took_over(make_cfg, contentstore, course_id,
                                                                                  verb):
    outcomes = sweep(make_cfg, contentstore, course_id, verb)
    assert len(outcomes) > 3
    print(f"{verb} {course_id}: {len(outcomes)} freeze points")
