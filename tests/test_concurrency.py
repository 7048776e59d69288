"""Runners racing for one course: many trials, exactly one marker and one winner each time."""

import json
import os
import subprocess
import sys
import time

import etl
from etl.model.layout import Layout, parse_course_id
from tests.batch import build_course
from tests.helpers import listing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COURSE = "course-v1:Race+Promote+2026"
TRIALS, RUNNERS = 8, 4
RACES = {}


def test_runners_promoting_the_same_course_at_once_give_one_marker_and_one_winner(make_cfg, contentstore):
    build_course(contentstore, COURSE, n=3)
    refusals = set()
    for trial in range(TRIALS):
        root = f"race{trial}"
        cfg = make_cfg(staging_prefix=f"{root}/staging", live_prefix=f"{root}/live", state_prefix=f"{root}/state",
                       manifest_dir=None)
        etl.extract(cfg, COURSE)
        start = time.time() + 3.0
        procs = [subprocess.Popen([sys.executable, "-m", "tests.children.promote", cfg.s3_endpoint_url, cfg.bucket,
                                   root, COURSE, str(start)], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(RUNNERS)]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-1500:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        winners = [r for r in results if r["outcome"] == "won"]
        assert len(winners) == 1, results
        for loser in (r for r in results if r["outcome"] != "won"):
            assert loser["outcome"] in ("ConcurrentRun", "AlreadyPromoted"), loser
            assert COURSE in loser["message"] and "\n" not in loser["message"]
            refusals.add(loser["outcome"])
        layout = Layout(cfg, parse_course_id(COURSE))
        assert [k for k in listing(cfg, f"{root}/") if k.endswith(("_COMMIT.json", "_MIGRATED.json"))] == [layout.marker]
        assert etl.verify(cfg, COURSE).ok
    RACES["trials"], RACES["runners"] = TRIALS, RUNNERS
    assert refusals
