"""A runner that freezes and wakes up after losing its lease can never commit, and no takeover deletes a commit.

Runner A migrates a course with its own S3 client and a one-second lease, and
freezes (``tests/freeze.py``) just before or just after its commit. Once its
lease has expired, runner B acts on the course with another client; then A
wakes up. After every interleaving the invariant holds: a course the tool
reports as committed verifies and is byte-exact, and a course it does not has
no live transcripts. An operator's re-run of ``migrate`` then finishes every course.
"""

import time

import pytest

import etl
from etl.layout import Layout, parse_course_id, quote_segment
from tests.batch import build_course, source_transcripts
from tests.freeze import Freezer, Runner, first_put, put_of
from tests.helpers import listing, objects

NEW, OLD = "course-v1:Fence+Frozen+2026", "Fence/Frozen/2026"
LEASE = 1
COMMIT = '"manifest_sha256"'  # only the commit marker's body has it


def committed_state(cfg, course_id):
    rows = etl.status(cfg, course_id)
    return rows["state"].iloc[0] if len(rows) else None


def assert_invariant(cfg, db, course_id):
    """A course reported committed verifies byte for byte; any other course has nothing live."""
    layout = Layout(cfg, parse_course_id(course_id))
    live = objects(cfg, layout.live_transcripts)
    if committed_state(cfg, course_id) == "promoted":
        expected = {layout.live_transcripts + quote_segment(n): b for n, b in source_transcripts(db, course_id).items()}
        assert live == expected
        result = etl.verify(cfg, course_id)
        assert result.ok, result.problems
        return "committed"
    assert live == {}, f"not committed, yet live: {sorted(live)[:3]}"
    assert listing(cfg, layout.live_manifest) == {}
    return "not committed"


def assert_finished_by_rerun(cfg, db, course_id):
    summary = etl.migrate(cfg, [course_id], workers=1, retries=0)
    assert summary.ok and summary.courses["outcome"].iloc[0] in ("promoted", "skipped"), summary.text()
    assert assert_invariant(cfg, db, course_id) == "committed"
    layout = Layout(cfg, parse_course_id(course_id))
    assert listing(cfg, layout.staging_root) == {}
    assert [k for k in listing(cfg, layout.live_root) if k.endswith("_MIGRATED.json")] == [layout.marker]


def start_frozen(make_cfg, course_id, when):
    """Start runner A, let it freeze before or after its commit, and let its lease run out."""
    cfg_a = make_cfg(lease_seconds=LEASE)
    marker = Layout(cfg_a, parse_course_id(course_id)).marker
    freezer = Freezer(cfg_a, **{when: put_of(marker, COMMIT)})
    a = Runner(lambda: (etl.extract(cfg_a, course_id), etl.promote(cfg_a, course_id)))
    a.start()
    freezer.wait()
    time.sleep(LEASE + 0.5)  # A's lease expires while it is frozen: the only sleep, the lease itself
    return a, freezer


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
    cfg_b = make_cfg()
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
    cfg_b = make_cfg()
    etl.extract(cfg_b, course_id)  # takes over from promoting and removes A's uncommitted live copies
    freezer.release()
    assert a.outcome() == "ConcurrentRun"
    assert assert_invariant(cfg_b, contentstore, course_id) == "not committed"
    assert committed_state(cfg_b, course_id) == "staged"
    assert_finished_by_rerun(cfg_b, contentstore, course_id)


@pytest.mark.parametrize("course_id", [NEW, OLD])
def test_takeover_that_looked_before_the_marker_landed_never_deletes_the_commit(make_cfg, contentstore, course_id):
    """Reproduction: B reads the course just before A's marker lands, A dies, then B wins the claim."""
    build_course(contentstore, course_id, n=3)
    a, freezer_a = start_frozen(make_cfg, course_id, "before")
    cfg_b = make_cfg()
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
    """``state.verb`` turns an escaped PreconditionFailed into ConcurrentRun naming the course."""
    from etl import s3, state

    @state.verb
    def verb(cfg, course_id):
        raise s3.PreconditionFailed("video-transcripts/x/_MIGRATED.json")

    with pytest.raises(etl.ConcurrentRun, match=r"course c1: video-transcripts/x/_MIGRATED.json changed") as err:
        verb(None, "c1")
    assert err.value.exit_code == 3 and "\n" not in str(err.value)
