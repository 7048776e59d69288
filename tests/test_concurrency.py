"""Runners racing for one course: exactly one marker and one winner, the others refused in one line.

Each race is a deterministic interleaving, not a start line and luck: every
runner is frozen (``tests.freeze``) at the request the race is about, and all
are let go together once each has reached it.
"""

import threading

import etl
from etl.model.layout import Layout, parse_course_id
from tests.batch import build_course
from tests.freeze import Freezer, put_of
from tests.helpers import listing

COURSE, OLD = "course-v1:Race+Promote+2026", "Race/Promote/2026"
RUNNERS = 4


def race(cfgs, course, freeze_at):
    """Run ``promote`` on every Config at once, each frozen before its request ``freeze_at(cfg)``; return outcomes."""
    freezers = [Freezer(cfg, before=freeze_at(cfg)) for cfg in cfgs]
    outcomes = [None] * len(cfgs)

    def run(i):
        try:
            etl.promote(cfgs[i], course)
            outcomes[i] = ("won", "")
        except etl.EtlError as err:
            outcomes[i] = (type(err).__name__, str(err))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(cfgs))]
    for t in threads:
        t.start()
    for freezer in freezers:
        freezer.wait()  # every runner has looked at the same record version and holds its claim write
    for freezer in freezers:
        freezer.release()
    for t in threads:
        t.join(120)
    return outcomes


def runners(make_cfg, root):
    return [make_cfg(staging_prefix=f"{root}/staging", live_prefix=f"{root}/live", state_prefix=f"{root}/state",
                     manifest_dir=None) for _ in range(RUNNERS)]


def check_one_commit(cfg, course, root):
    layout = Layout(cfg, parse_course_id(course))
    assert [k for k in listing(cfg, f"{root}/") if k.endswith(("_COMMIT.json", "_MIGRATED.json"))] == [layout.marker]
    assert etl.verify(cfg, course).ok


def test_runners_claiming_the_same_staged_course_at_once_give_one_winner(make_cfg, contentstore):
    for course, root in ((COURSE, "race-new"), (OLD, "race-old")):
        build_course(contentstore, course, n=3)
        cfgs = runners(make_cfg, root)
        etl.extract(cfgs[0], course)
        record = Layout(cfgs[0], parse_course_id(course)).record
        outcomes = race(cfgs, course, lambda cfg: put_of(record))
        assert [o for o, _ in outcomes].count("won") == 1, outcomes
        # All looked at the same record version, so every loser lost the conditional write on it.
        losers = [(o, m) for o, m in outcomes if o != "won"]
        assert [o for o, _ in losers] == ["ConcurrentRun"] * (RUNNERS - 1), outcomes
        assert all(course in m and "\n" not in m for _, m in losers), losers
        check_one_commit(cfgs[0], course, root)


def attempt(cfg, course):
    try:
        etl.promote(cfg, course)
        return "won", ""
    except etl.EtlError as err:
        return type(err).__name__, str(err)


def test_a_runner_that_looked_before_the_commit_and_one_that_looks_after_are_both_refused(make_cfg, contentstore):
    build_course(contentstore, COURSE, n=3)
    a, b, c = runners(make_cfg, "race-commit")[:3]
    etl.extract(a, COURSE)
    freezer = Freezer(b, before=put_of(Layout(b, parse_course_id(COURSE)).record))
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(b=attempt(b, COURSE)))
    thread.start()
    freezer.wait()  # b has looked at the staged course and holds its claim write
    assert attempt(a, COURSE) == ("won", "")  # a claims, copies and commits meanwhile
    freezer.release()
    thread.join(120)
    assert outcome["b"][0] == "ConcurrentRun" and COURSE in outcome["b"][1], outcome
    late = attempt(c, COURSE)
    assert late[0] == "AlreadyPromoted" and COURSE in late[1] and "\n" not in late[1], late
    check_one_commit(c, COURSE, "race-commit")
