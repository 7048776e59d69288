"""Crash at every S3 and contentstore call of a migration, recover, and check that nothing is half-live.

The invariant after recovery: each course is either promoted (marker present,
live set == contentstore set byte for byte) or absent (no live object, no
marker), and no staging run is left after a re-run.
"""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

import etl
from etl.store.probe import probe
from etl.model.layout import Layout, parse_course_id, quote_segment
from tests import faults
from tests.batch import batch_ids, build_batch, build_course, source_transcripts
from tests.helpers import listing, live_prefix, objects, live_objects

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COURSE = "course-v1:Crash+Test+2026"


@pytest.fixture(autouse=True)
def disarmed():
    yield
    faults.disarm()


def prefixed(make_cfg, root, **settings):
    cfg = make_cfg(staging_prefix=f"{root}/staging", live_prefix=f"{root}/live", state_prefix=f"{root}/state",
                   manifest_dir=None, s3_concurrency=4, **settings)
    probe(cfg)  # once per bucket in this process, before any call is counted
    return faults.install(cfg)


def assert_invariant(cfg, db, course_id, after_rerun):
    layout = Layout(cfg, parse_course_id(course_id))
    live = objects(cfg, layout.live_root)
    if etl.committed(cfg, course_id):
        prefix = live_prefix(cfg, course_id)
        expected = {prefix + quote_segment(n): b for n, b in source_transcripts(db, course_id).items()}
        assert {k: v for k, v in live.items() if "/transcripts/" in k} == expected
        assert etl.verify(cfg, course_id).ok
        state = "promoted"
    else:  # the commit key may hold a fence or a release: never a commit, and nothing beside it
        assert live_objects(cfg, layout) == {}, f"half-live: {sorted(live)[:3]}"
        state = "absent"
    if after_rerun:
        assert listing(cfg, layout.staging_root) == {}
    return state


def count_calls(fn):
    faults.arm(10 ** 9)
    fn()
    return faults.disarm()


def recover(cfg, course_ids, point):
    """Re-run the migration at even points, roll back at odd ones."""
    if point % 2 == 0:
        summary = etl.migrate(cfg, course_ids, workers=1, retries=0)
        assert summary.ok, summary.text()
        return True
    for course_id in course_ids:
        try:
            etl.rollback(cfg, course_id)
        except etl.Refused:  # committed before the crash: it stays promoted
            pass
    return False


def test_crash_by_exception_at_every_call_of_extract_and_promote(make_cfg, contentstore, record_property):
    build_course(contentstore, COURSE)
    base = prefixed(make_cfg, "count")
    total = count_calls(lambda: (etl.extract(base, COURSE), etl.promote(base, COURSE)))
    assert total > 20
    states = set()
    for point in range(1, total + 1):
        cfg = prefixed(make_cfg, f"raise{point}")
        faults.arm(point, "raise")
        try:
            etl.extract(cfg, COURSE)
            etl.promote(cfg, COURSE)
        except (faults.InjectedFault, etl.EtlError):
            pass
        assert faults.fired(), f"point {point} was never reached"
        faults.disarm()
        rerun = recover(cfg, [COURSE], point)
        states.add(assert_invariant(cfg, contentstore, COURSE, rerun))
    record_property("crash_points", total)
    assert states == {"promoted", "absent"}


@pytest.mark.parametrize("how", ["verbs", "migrate"])
def test_crash_by_sigkill_at_every_call_of_a_course(make_cfg, contentstore, record_property, how):
    """Kill the process at every call of extract then promote, or of migrate's one claim from extract to commit."""
    build_course(contentstore, COURSE)
    base = prefixed(make_cfg, "count")
    if how == "migrate":
        total = count_calls(lambda: etl.migrate(base, [COURSE], workers=1, retries=0))
    else:
        total = count_calls(lambda: (etl.extract(base, COURSE), etl.promote(base, COURSE)))

    def crash(point):  # each point has its own prefixes, so two children can run at once
        env = dict(os.environ, ETL_FAULT_AT=str(point), ETL_FAULT_ACTION="kill")
        return subprocess.run([sys.executable, "-m", "tests.children.crash", base.s3_endpoint_url, base.bucket,
                               f"kill{point}", COURSE, how], cwd=ROOT, env=env, capture_output=True,
                              timeout=120).returncode

    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(crash, range(1, total + 1)))
    killed = codes.count(-9)
    for point in range(1, total + 1):
        cfg = prefixed(make_cfg, f"kill{point}")
        rerun = recover(cfg, [COURSE], point)
        assert_invariant(cfg, contentstore, COURSE, rerun)
    record_property("crash_points", killed)
    assert killed >= total - 2  # thread timing may shift the last call or two past the end


def test_crash_by_exception_at_every_call_of_a_batch(make_cfg, contentstore, record_property):
    ids = [batch_ids(9)[i] for i in (1, 2, 8)]  # one, two and one transcripts; the last course old-style
    build_batch(contentstore, 9)
    base = prefixed(make_cfg, "count")
    total = count_calls(lambda: etl.migrate(base, ids, workers=1, retries=0))
    for point in range(1, total + 1):
        cfg = prefixed(make_cfg, f"batch{point}")
        faults.arm(point, "raise")
        try:
            etl.migrate(cfg, ids, workers=1, retries=0)
        except (faults.InjectedFault, etl.EtlError):
            pass
        faults.disarm()
        rerun = recover(cfg, ids, point)
        for course_id in ids:
            assert_invariant(cfg, contentstore, course_id, rerun)
    record_property("crash_points", total)
    assert total > 40
