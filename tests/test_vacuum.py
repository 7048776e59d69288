"""vacuum deletes dead epochs' objects past the retention, and never a commit, a staged run or a later epoch."""

import etl
from etl.protocol import claims, state as st
from etl.store import s3
from etl.model.layout import Layout, new_run_id, parse_course_id
from tests.conftest import COURSE, fill
from tests.helpers import listing, run_cli


def dead_epoch_leftovers(cfg, contentstore):
    """Commit a course at epoch 2, then leave copies of a dead epoch 1 and a later, claimed epoch behind."""
    fill(contentstore)
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    layout = Layout(cfg, parse_course_id(COURSE))
    meta = s3.tool_metadata(parse_course_id(COURSE), new_run_id())
    dead = [layout.live_key(1, "left-behind.srt"), layout.staged_key(1, "left-behind.srt")]
    for key in dead:
        s3.put(cfg, key, b"dead", metadata=meta)
    return layout, dead


def test_vacuum_deletes_only_dead_epochs_and_keeps_the_commit(cfg, contentstore, capsys, tmp_path):
    layout, dead = dead_epoch_leftovers(cfg, contentstore)
    foreign = layout.live_root + "e1/operator-notes.txt"
    cfg.s3.put_object(Bucket=cfg.bucket, Key=foreign, Body=b"not the tool's")
    before = listing(cfg)
    kept = etl.vacuum(cfg, COURSE)  # the default retention keeps anything younger than 7 days
    assert kept.deleted == 0 and listing(cfg) == before
    plan = etl.vacuum(cfg, COURSE, retain_days=0, dry_run=True)
    assert sorted(plan.would_delete) == sorted(dead) and listing(cfg) == before and plan.kept == {2: "committed"}
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "vacuum", COURSE, "--retain-days", "0")
    assert code == 0 and "e1" in out and "e2:committed" in out, err
    after = listing(cfg)
    assert set(before) - set(after) == set(dead) and foreign in after
    assert etl.verify(cfg, COURSE).ok


def test_vacuum_never_touches_a_staged_run_or_an_epoch_it_did_not_read(cfg, contentstore):
    fill(contentstore)
    etl.extract(cfg, COURSE)  # staged at epoch 1, the record's epoch
    course = parse_course_id(COURSE)
    claim = claims.claim(cfg, course, new_run_id(), st.PROMOTING)  # a runner at work: epoch 2
    claim.stop()
    layout = Layout(cfg, course)
    s3.put(cfg, layout.live_key(2, "in-flight.srt"), b"x", metadata=s3.tool_metadata(course, claim.run_id))
    before = listing(cfg)
    result = etl.vacuum(cfg, COURSE, retain_days=0)
    assert result.deleted == 0 and listing(cfg) == before
    assert result.kept == {2: f"promoting by run {claim.run_id}, at work now: nothing of the course is vacuumed "
                              "until it ends"}
