"""A runner that freezes and wakes up after losing its lease can never commit, and no takeover deletes a commit.

Runner A migrates a course with its own S3 client and freezes
(``tests/freeze.py``) just before or just after its commit. Runner B's lease
clock is moved past A's lease, so by S3's clock as B reads it A's lease has
expired; B acts on the course with another client; then A wakes up, its own
clock unchanged, as a suspended VM's would be. After every interleaving the invariant holds: a course the tool
reports as committed verifies and is byte-exact, and a course it does not has
no live transcripts. An operator's re-run of ``migrate`` then finishes every course.
"""

import pytest

from etl.protocol import claims
import etl
from etl.model.layout import Layout, parse_course_id
from tests.batch import build_course
from tests.freeze import Freezer, Runner, first_put, put_of
from tests.helpers import assert_finished_by_rerun, assert_invariant, listing

NEW, OLD = "course-v1:Fence+Frozen+2026", "Fence/Frozen/2026"
COMMIT = '"manifest_sha256"'  # only the commit marker's body has it


def start_frozen(make_cfg, course_id, when):
    """Start runner A and let it freeze before or after its commit."""
    cfg_a = make_cfg()
    marker = Layout(cfg_a, parse_course_id(course_id)).marker
    freezer = Freezer(cfg_a, **{when: put_of(marker, COMMIT)})
    a = Runner(lambda: (etl.extract(cfg_a, course_id), etl.promote(cfg_a, course_id)))
    a.start()
    freezer.wait()
    return a, freezer


def taker(make_cfg):
    """Return runner B's Config, whose lease clock reads every lease taken so far as expired."""
    cfg = make_cfg()
    cfg.clock.advance(cfg.lease_seconds + 1)
    return cfg


def b_action(cfg, course_id, action):
    if action == "migrate":
        return etl.migrate(cfg, [course_id], workers=1, retries=0).courses["outcome"].iloc[0]
    if action == "rollback --force":
        etl.rollback(cfg, course_id, force=True)
    else:
        getattr(etl, action)(cfg, course_id)
    return "ok"


EXPECTED_B = {
    "before": {"extract": "ok", "promote": "ok", "migrate": "promoted", "rollback": "ok", "rollback --force": "ok"},
    "after": {"extract": "AlreadyPromoted", "promote": "AlreadyPromoted", "migrate": "skipped",
              "rollback": "Refused", "rollback --force": "ok"},
}


@pytest.mark.parametrize("course_id", [NEW, OLD])
@pytest.mark.parametrize("action", list(EXPECTED_B["before"]))
@pytest.mark.parametrize("when", ["before", "after"])
def test_frozen_runner_against_every_verb(make_cfg, contentstore, course_id, action, when):
    build_course(contentstore, course_id, n=3)
    a, freezer = start_frozen(make_cfg, course_id, when)
    cfg_b = taker(make_cfg)
    b = Runner(lambda: b_action(cfg_b, course_id, action))
    b.run()
    got = b.result if b.error is None else type(b.error).__name__
    assert got == EXPECTED_B[when][action], b.error
    freezer.release()
    a_outcome = a.outcome()
    if when == "before":  # A lost its claim while frozen: its late commit must fail, and say so
        assert a_outcome == "ConcurrentRun", a.error
        assert course_id in str(a.error) and "\n" not in str(a.error)
    else:
        assert a_outcome == "ok", a.error
    state = assert_invariant(cfg_b, contentstore, course_id)
    if action == "rollback --force" or (when == "before" and action in ("extract", "rollback")):
        assert state == "not committed"
    else:
        assert state == "committed"
    assert_finished_by_rerun(cfg_b, contentstore, course_id)


@pytest.mark.parametrize("course_id", [NEW, OLD])
def test_stale_commit_after_a_takeover_cleaned_up_never_lands(make_cfg, contentstore, course_id):
    """Reproduction: A frozen before its marker; B takes the course over and clears A's copies; A wakes."""
    build_course(contentstore, course_id, n=3)
    a, freezer = start_frozen(make_cfg, course_id, "before")
    cfg_b = taker(make_cfg)
    etl.extract(cfg_b, course_id)  # takes over from promoting and removes A's uncommitted live copies
    freezer.release()
    assert a.outcome() == "ConcurrentRun"
    assert assert_invariant(cfg_b, contentstore, course_id) == "not committed"
    assert etl.status(cfg_b, course_id)["state"].tolist() == ["staged"]
    assert_finished_by_rerun(cfg_b, contentstore, course_id)


@pytest.mark.parametrize("course_id", [NEW, OLD])
def test_takeover_that_looked_before_the_marker_landed_never_deletes_the_commit(make_cfg, contentstore, course_id):
    """Reproduction: B reads the course just before A's marker lands, A dies, then B wins the claim."""
    build_course(contentstore, course_id, n=3)
    a, freezer_a = start_frozen(make_cfg, course_id, "before")
    cfg_b = taker(make_cfg)
    freezer_b = Freezer(cfg_b, before=first_put)  # B has read the record and the marker key: nothing committed
    b = Runner(lambda: etl.extract(cfg_b, course_id))
    b.start()
    freezer_b.wait()
    freezer_a.let_through()  # A's commit lands; A then dies before it updates its record
    freezer_b.release()
    assert b.outcome() == "AlreadyPromoted", b.error
    assert assert_invariant(cfg_b, contentstore, course_id) == "committed"
    freezer_a.release()
    assert a.outcome() == "ok", a.error
    assert_finished_by_rerun(cfg_b, contentstore, course_id)


def test_a_marker_that_changes_under_a_forced_rollback_is_a_refusal_and_nothing_is_counted(make_cfg, contentstore):
    """The commit changes between rollback's read and its conditional write: a refusal, nothing deleted."""
    build_course(contentstore, NEW, n=3)
    cfg = make_cfg()
    etl.extract(cfg, NEW)
    etl.promote(cfg, NEW)
    layout = Layout(cfg, parse_course_id(NEW))
    before = {k: v for k, v in listing(cfg).items() if "/events/" not in k}
    rolling = make_cfg()
    freezer = Freezer(rolling, before=first_put)
    r = Runner(lambda: etl.rollback(rolling, NEW, force=True))
    r.start()
    freezer.wait()
    head = cfg.s3.head_object(Bucket=cfg.bucket, Key=layout.marker)  # someone rewrites the commit meanwhile
    body = cfg.s3.get_object(Bucket=cfg.bucket, Key=layout.marker)["Body"].read().replace(b'"bytes"', b'"bytes" ')
    cfg.s3.put_object(Bucket=cfg.bucket, Key=layout.marker, Body=body, Metadata=head["Metadata"])
    freezer.release()
    assert r.outcome() == "ConcurrentRun", r.error
    assert NEW in str(r.error) and "\n" not in str(r.error)
    after = {k: v for k, v in listing(cfg).items() if "/events/" not in k and not k.endswith(".json")}
    assert after == {k: v for k, v in before.items() if not k.endswith(".json")}
    assert etl.committed(cfg, NEW) is not None and etl.verify(cfg, NEW).ok
    assert "marker_deleted" not in set(etl.history(cfg, NEW)["event"])


def test_a_precondition_lost_inside_a_verb_is_a_one_line_refusal():
    """``claims.verb`` turns an escaped PreconditionFailed into ConcurrentRun naming the course."""
    from etl.store import s3

    @claims.verb
    def verb(cfg, course_id):
        raise s3.PreconditionFailed("video-transcripts/x/_MIGRATED.json")

    with pytest.raises(etl.ConcurrentRun, match=r"course c1: video-transcripts/x/_MIGRATED.json changed") as err:
        verb(None, "c1")
    assert err.value.exit_code == 3 and "\n" not in str(err.value)


def after_put_of(key, contains):
    """Fire once a PutObject of ``key`` whose body contains ``contains`` has been answered."""
    return lambda operation, request_key, body: (operation == "PutObject" and request_key == key
                                                  and isinstance(body, bytes) and contains.encode() in body)


def frozen_while_b_migrates(make_cfg, db, course_id, trigger, action):
    """Run A's ``action`` until ``trigger`` freezes it, let B migrate the course meanwhile, then wake A.

    Return A's outcome; B's migrate must have promoted the course, and it must stay committed.
    """
    cfg_a = make_cfg()
    freezer = Freezer(cfg_a, after=trigger)
    a = Runner(lambda: action(cfg_a))
    a.start()
    freezer.wait()
    cfg_b = taker(make_cfg)
    assert b_action(cfg_b, course_id, "migrate") == "promoted"
    freezer.release()
    outcome = a.outcome()
    assert assert_invariant(cfg_b, db, course_id) == "committed"
    assert etl.status(cfg_b, course_id)["state"].tolist() == ["promoted"]
    assert_finished_by_rerun(cfg_b, db, course_id)
    return outcome, a.error


@pytest.mark.parametrize("course_id", [NEW, OLD])
def test_reproduction_a_frozen_forced_rollback_never_deletes_a_later_commit(make_cfg, contentstore, course_id):
    """A's fence replaced the commit, A froze; B took over and committed; A woke and went on deleting."""
    build_course(contentstore, course_id, n=3)
    etl.migrate(make_cfg(), [course_id], workers=1)
    marker = Layout(make_cfg(), parse_course_id(course_id)).marker
    outcome, error = frozen_while_b_migrates(make_cfg, contentstore, course_id, after_put_of(marker, '"fenced"'),
                                             lambda cfg: etl.rollback(cfg, course_id, force=True))
    assert outcome == "ConcurrentRun", error


@pytest.mark.parametrize("course_id", [NEW, OLD])
def test_reproduction_a_frozen_promote_never_deletes_the_copies_of_the_runner_that_took_over(
        make_cfg, contentstore, course_id):
    """A froze after its first copy; B rolled the same staged run forward and committed; A woke."""
    build_course(contentstore, course_id, n=3)
    etl.extract(make_cfg(), course_id)
    outcome, error = frozen_while_b_migrates(make_cfg, contentstore, course_id,
                                             lambda operation, key, body: operation == "CopyObject",
                                             lambda cfg: etl.promote(cfg, course_id))
    assert outcome == "ConcurrentRun", error


def test_a_lease_is_judged_by_s3_s_clock_not_by_the_hosts_wall_clocks(make_cfg, contentstore):
    """A record whose lease_expires_at is long past (a writer whose clock ran behind) still holds if S3 says so."""
    from etl.protocol import state as st
    from etl.store import s3
    from etl.model.layout import new_run_id

    cfg = make_cfg()
    course = parse_course_id(NEW)
    claim = claims.claim(cfg, course, new_run_id(), st.EXTRACTING)
    claim.stop()
    record, tag = st.read(cfg, course)
    skewed = dict({k: v for k, v in record.items() if k != "_age"}, lease_expires_at="2000-01-01T00:00:00.000Z")
    s3.put_json(cfg, Layout(cfg, course).record, skewed, metadata={}, if_match=f'"{tag}"')
    assert st.lease_alive(st.read(cfg, course)[0], cfg.clock)
    with pytest.raises(etl.ConcurrentRun, match="held by"):
        etl.extract(cfg, NEW)
    later = make_cfg()
    later.clock.advance(cfg.lease_seconds + 1)
    assert not st.lease_alive(st.read(later, course)[0], later.clock)


def test_a_holder_is_gone_only_when_its_own_machine_namespace_and_process_say_so():
    import os
    import subprocess
    import sys

    from etl.model import lease

    me = lease.identity()
    if not me["boot_id"] or not me["pid_ns"] or me["started"] is None:
        pytest.skip("needs Linux /proc")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        alive = dict(me, pid=child.pid, started=lease._started(child.pid))
        assert not lease.holder_gone(alive)
        assert lease.holder_gone(dict(alive, started=alive["started"] + 1))  # the pid was reused
        assert not lease.holder_gone(dict(alive, pid_ns="pid:[1]", started=0))  # another container, same host name
        assert not lease.holder_gone(dict(alive, boot_id="another-boot", started=0))
    finally:
        child.kill()
        child.wait()
    assert lease.holder_gone(dict(me, pid=child.pid, started=alive["started"]))  # exited
    assert not lease.holder_gone(dict(me, pid=os.getpid()))  # this very process judges its own claims


def test_a_runner_that_cannot_renew_in_time_stops_before_its_next_write(make_cfg, contentstore):
    from etl.protocol import state as st
    from etl.store import s3
    from etl.model.layout import new_run_id

    cfg = make_cfg()
    course = parse_course_id(NEW)
    claim = claims.claim(cfg, course, new_run_id(), st.EXTRACTING)
    claim.stop()  # no heartbeat renews it
    key = Layout(cfg, course).staged_key(claim.epoch, "x.srt")
    with claim.guarded():
        s3.put(cfg, key, b"in time", metadata={})
    cfg.clock.advance(cfg.lease_seconds - cfg.lease_margin() + 1)
    with pytest.raises(etl.LeaseExpired, match="could not renew its lease in time"), claim.guarded():
        s3.put(cfg, key + ".late", b"too late", metadata={})  # refused before any attempt is sent
    assert listing(cfg, key) == {key: listing(cfg, key)[key]} and listing(cfg, key + ".late") == {}
    assert etl.LeaseExpired.exit_code == 3 and etl.LeaseExpired.transient


def test_the_heartbeat_renews_through_its_own_client(make_cfg, contentstore):
    from etl.protocol import state as st
    from etl.model.layout import new_run_id

    cfg = make_cfg()
    sent, main = [], []
    cfg.lease_s3.meta.events.register("after-call.s3.PutObject", lambda **_: sent.append(1))
    claim = claims.claim(cfg, parse_course_id(NEW), new_run_id(), st.EXTRACTING)
    claim.stop()
    cfg.s3.meta.events.register("after-call.s3.PutObject", lambda **_: main.append(1))
    assert claim.beat()
    assert sent == [1] and main == [] and claim.record["version"] == 2  # the claim wrote 1; the renewal 2