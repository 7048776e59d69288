"""The benchmark script runs end to end on a tiny course and prints every figure it promises.

Nothing here is timed: these tests only check that ``scripts/bench.py`` still
measures, counts and reports, so a change to the tool cannot silently break it.
"""

import os
import shutil
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


def rows(stdout):
    """Return {label: [figures]} for the result lines of a bench report."""
    return {line[:40].strip(): line[40:].split() for line in stdout.splitlines() if line.startswith("(")}


def test_bench_measures_migrate_and_the_raw_floor_on_one_endpoint():
    out = bench("--transcripts", "20", "--only", "ac")
    assert out.returncode == 0, out.stderr
    found = rows(out.stdout)
    a, c = found["(a) migrate, end to end"], found["(c) raw floor: parallel puts only"]
    # transcripts/s, seconds, requests/transcript, peak RSS +MB, client CPU s, server CPU s
    assert len(a) == len(c) == 6
    assert float(a[2]) > 2.0  # every transcript is put into staging and copied live, plus the course's own requests
    assert float(c[2]) == 1.0
    assert float(a[1]) > 0 and float(c[1]) > 0
    assert float(a[4]) > 0 and float(a[5]) > 0  # the tool's process and moto's server both worked
    assert re.search(r"^a/c: \(a\) takes \d+\.\d\dx the time of \(c\)$", out.stdout, re.M)


def test_bench_batch_reports_course_rates():
    out = bench("--only", "", "--courses", "3")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^batch of 3 courses: \d+ courses/min \(\d+ for the first 100, \d+ for the last 100\), "
                     r"\d+\.\d S3 requests per course \(\d+\.\d fixed\); client CPU \d+ ms and server CPU \d+ ms per course$", out.stdout, re.M), out.stdout
    path = re.search(r"^one one-transcript course alone: (\d+) S3 requests \((\d+) fixed\), (\d+) of them one "
                     r"after another; the store probe before it: (\d+) requests, once per process$", out.stdout, re.M)
    assert path, out.stdout
    total, fixed, chain, probe = map(int, path.groups())
    assert total == fixed + 2 and 1 < chain < total and fixed <= 15 and probe <= 11


def test_bench_refuses_an_unknown_measurement_in_one_line():
    out = bench("--only", "ax")
    assert out.returncode == 1
    assert out.stderr.strip() == "bench: --only takes letters from abcd, not 'ax'"


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")
def test_bench_times_the_celery_engines_own_overhead():
    out = bench("--only", "", "--overhead", "40")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^celery engine overhead, 40 courses with nothing to do: enqueue \d+\.\d s \(\d+ us a course\), "
                     r"re-run attaching \d+\.\d s \(\d+ us\), collect \d+\.\d s \(\d+ us\)$", out.stdout, re.M), out.stdout
