import threading

import pytest

import etl
from etl.protocol import claims, state as st
from etl.model.layout import Layout, new_run_id, parse_course_id
from tests.helpers import objects
from tests.conftest import COURSE, fill

course = parse_course_id(COURSE)


def test_states_move_only_along_the_machine(cfg):
    claim = claims.claim(cfg, course, new_run_id(), st.EXTRACTING)
    with pytest.raises(etl.IllegalTransition, match="extracting to promoted"):
        claim.move(st.PROMOTED)
    claim.move(st.STAGED)
    with pytest.raises(etl.IllegalTransition):
        claim.move(st.ROLLED_BACK)
    assert st.read(cfg, course)[0]["state"] == "staged"


def test_two_runners_racing_for_one_course_give_one_winner(make_cfg):
    cfgs = [make_cfg() for _ in range(8)]
    cfgs[0].s3  # the bucket exists before the race starts
    barrier, outcomes = threading.Barrier(len(cfgs)), []

    def race(cfg):
        barrier.wait()
        try:
            c = claims.claim(cfg, course, new_run_id(), st.EXTRACTING)
            c.stop()
            outcomes.append("won")
        except etl.ConcurrentRun as err:
            assert "\n" not in str(err)
            outcomes.append("refused")

    threads = [threading.Thread(target=race, args=(c,)) for c in cfgs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1 and outcomes.count("refused") == len(cfgs) - 1


def test_a_live_lease_refuses_others_and_an_expired_one_is_taken_over(make_cfg):
    cfg = make_cfg()
    first = claims.claim(cfg, course, new_run_id(), st.EXTRACTING)
    first.stop()
    with pytest.raises(etl.ConcurrentRun, match="held by run"):
        claims.claim(make_cfg(), course, new_run_id(), st.EXTRACTING)
    later = make_cfg()
    later.clock.advance(cfg.lease_seconds + 1)  # by S3's clock as this runner reads it, the lease has run out
    second = claims.claim(later, course, new_run_id(), st.EXTRACTING)
    with pytest.raises(etl.ConcurrentRun):
        first.move(st.STAGED)  # the old runner, back from the dead, cannot move the course
    second.move(st.STAGED)
    assert st.read(cfg, course)[0]["run_id"] == second.run_id


def test_each_heartbeat_renews_the_lease_and_a_runner_past_its_own_deadline_stops_writing(make_cfg):
    cfg = make_cfg()
    claim = claims.claim(cfg, course, new_run_id(), st.EXTRACTING)
    claim.stop()  # the test beats by hand, on the runner's own clock
    margin = cfg.lease_seconds - cfg.lease_margin()
    before = st.read(cfg, course)[0]
    cfg.clock.advance(margin - 1)
    claim.check()  # still within its lease
    assert claim.beat()
    renewed = st.read(cfg, course)[0]
    assert renewed["version"] == before["version"] + 1 and renewed["lease_expires_at"] > before["lease_expires_at"]
    cfg.clock.advance(2)  # past the first write's deadline, within the renewal's
    claim.check()
    assert st.lease_alive(renewed, make_cfg().clock)
    with pytest.raises(etl.ConcurrentRun):
        claims.claim(make_cfg(), course, new_run_id(), st.EXTRACTING)
    cfg.clock.advance(margin)  # no heartbeat since: the runner can no longer be sure of its lease
    with pytest.raises(etl.LeaseExpired):
        claim.check()


def test_every_transition_is_logged_with_time_run_host_and_pid(cfg, contentstore):
    fill(contentstore)
    run = etl.extract(cfg, COURSE).run_id
    etl.promote(cfg, COURSE)
    import json

    events = etl.history(cfg, COURSE)
    assert list(events["event"]) == ["extracting", "staged", "promoting", "promoted"]
    assert list(events["previous"]) == [None, "extracting", "staged", "promoting"]
    assert all(e.run_id == run and e.host and e.pid and e.at for e in events.itertuples())
    assert json.loads(events.loc[1, "details"])["transcripts"] == 9
    assert objects(cfg, Layout(cfg, course).events) == {}  # short logs live in the record alone
    table = etl.status(cfg)
    assert table.loc[0, "state"] == "promoted" and table.loc[0, "transcripts"] == 9


def test_a_long_history_moves_its_oldest_entries_to_an_archive_and_loses_none(cfg, monkeypatch):
    monkeypatch.setattr(st, "HISTORY_LIMIT", 6)
    monkeypatch.setattr(st, "HISTORY_KEPT", 3)
    runs = []
    for _ in range(5):  # 5 runs of 2 transitions each: 10 entries, of which the record keeps at most 6
        runs.append(new_run_id())
        claim = claims.claim(cfg, course, runs[-1], st.ROLLING_BACK)
        claim.note("marker_deleted", marker_run_id="x")
        claim.move(st.ROLLED_BACK, deleted=0)
        claims.release_fence(claim, "rolled_back")
    record = st.read(cfg, course)[0]
    assert 3 <= len(record["history"]) <= 6
    archives = objects(cfg, Layout(cfg, course).events)
    assert archives and all(k.endswith(".json") for k in archives)
    events = etl.history(cfg, COURSE)
    assert list(events["event"]) == ["rolling_back", "marker_deleted", "rolled_back"] * 5
    assert [r for r in events["run_id"][::3]] == runs
    assert list(events["at"]) == sorted(events["at"])


def test_history_reads_the_event_objects_older_versions_wrote(cfg):
    import json

    layout = Layout(cfg, course)
    old = {"course_id": COURSE, "run_id": "20260101T000000Z-0000abcd", "event": "promoted", "at": "2026-01-01T00:00:01.000Z",
           "host": "old-host", "pid": 7, "transcripts": 3}
    cfg.s3.put_object(Bucket=cfg.bucket, Key=f"{layout.events}20260101T000001.000000Z-{old['run_id']}-promoted.json",
                      Body=json.dumps(old).encode())
    claim = claims.claim(cfg, course, new_run_id(), st.ROLLING_BACK)
    claim.move(st.ROLLED_BACK)
    events = etl.history(cfg, COURSE)
    assert list(events["event"]) == ["promoted", "rolling_back", "rolled_back"]
    assert events.loc[0, "host"] == "old-host" and json.loads(events.loc[0, "details"]) == {"course_id": COURSE,
                                                                                           "transcripts": 3}


def test_an_archive_whose_record_write_lost_its_race_is_never_shown(cfg, monkeypatch):
    """Two runners cut an archive from the same record version; only the one whose record landed counts."""
    monkeypatch.setattr(st, "HISTORY_LIMIT", 6)
    monkeypatch.setattr(st, "HISTORY_KEPT", 3)
    for _ in range(3):
        claim = claims.claim(cfg, course, new_run_id(), st.ROLLING_BACK)
        claim.move(st.ROLLED_BACK)
        claims.release_fence(claim, "rolled_back")
    record, tag = st.read(cfg, course)
    loser = claims.Claim(cfg, course, new_run_id(), record, tag, st.epoch_of(record) + 1)
    winner = claims.Claim(cfg, course, new_run_id(), record, tag, st.epoch_of(record) + 1)
    winner.move(st.ROLLING_BACK)
    for n in range(3):
        loser.note("leftovers_removed", live=n)  # so its archive is cut differently from the winner's
    with pytest.raises(etl.ConcurrentRun):
        loser.move(st.ROLLING_BACK)  # its archive was written before its record write lost
    winner.move(st.ROLLED_BACK)
    archives = objects(cfg, Layout(cfg, course).events)
    assert len(archives) > len(st.read(cfg, course)[0]["archives"])  # the loser's archive is there, unlisted
    events = etl.history(cfg, COURSE)
    assert len(events) == 8 and not events.duplicated(["at", "event", "run_id"]).any()
