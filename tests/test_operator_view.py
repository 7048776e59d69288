"""What the operator reads is true: each case runs the real CLI in its own process and checks the code and the text.

The child (``tests.children.cli``) loads the first N courses of ``tests.batch``
into its own mongomock, as every process of the suite does, and runs the
command line as an operator types it.
"""

import json
import os
import socket
import subprocess
import sys

import etl
from etl.model.layout import Layout, parse_course_id
from tests.batch import batch_ids
from tests.helpers import listing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 6


def cli(cfg, *argv, n=N, env=None, target=True):
    """Run ``python -m tests.children.cli`` on the test's bucket; return (code, stdout, stderr)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    full_env.update(env or {})
    where = ["--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url, "--manifest-dir", ""] if target else []
    run = subprocess.run([sys.executable, "-m", "tests.children.cli", str(n), "0", *argv, *where],
                         capture_output=True, text=True, env=full_env, timeout=300, cwd=ROOT)
    return run.returncode, run.stdout, run.stderr


def test_a_typo_of_a_course_id_is_an_unknown_course_everywhere(cfg):
    real = batch_ids(N)[1]
    typo = real.replace("Course1", "Cuorse1")
    code, out, err = cli(cfg, "migrate", real)
    assert code == 0, err
    for argv in (["migrate", typo], ["migrate", typo, "--dry-run"], ["verify", typo], ["status", typo],
                 ["rollback", typo, "--force"], ["rollback", typo, "--dry-run"], ["history", typo], ["vacuum", typo],
                 ["extract", typo]):
        code, out, err = cli(cfg, *argv)
        last = err.strip().splitlines()[-1]
        assert code == 2 and out == "" and "Traceback" not in err, (argv, out, err)
        assert f"unknown course {typo}" in last and f"did you mean {real}?" in last, (argv, last)
    assert [k for k in listing(cfg) if typo.split(":")[1].split("+")[1] in k] == []


def test_the_dry_run_plan_on_stdout_names_every_course_with_its_count_and_fate(cfg):
    ids = batch_ids(N)
    code, out, err = cli(cfg, "migrate", ids[2])
    assert code == 0, err
    before = listing(cfg)
    code, out, err = cli(cfg, "migrate", "--all", "--dry-run")
    assert code == 0 and listing(cfg) == before, err
    table = out.split("course by course:", 1)[1]
    rows = {line.split()[0]: line for line in table.strip().splitlines()[1:]}
    assert set(rows) == set(ids)
    assert "skip: promoted" in rows[ids[2]]
    assert rows[ids[3]].split()[1:3] == ["migrate", "4"]  # course 3: three SJSON files and one long SRT


def test_a_fence_is_reported_as_a_fence_and_no_key_claims_a_migration(cfg):
    course = batch_ids(N)[4]
    code, _, err = cli(cfg, "extract", course)
    assert code == 0, err
    layout = Layout(cfg, parse_course_id(course))
    keys = listing(cfg, layout.live_root)
    assert list(keys) == [layout.marker] and not any(k.endswith("_MIGRATED.json") for k in listing(cfg))
    assert json.loads(cfg.s3.get_object(Bucket=cfg.bucket, Key=layout.marker)["Body"].read())["status"] == "fenced"
    code, out, err = cli(cfg, "verify", course)
    assert code == 5 and "not committed: run " in out and "fenced the course at " in out and "staged" in out
    assert "marker None" not in out and "no commit marker" not in out
    code, out, _ = cli(cfg, "rollback", course, "--dry-run")
    assert code == 0 and layout.marker not in out  # the commit key is never deleted: the fence is released


def test_celery_without_a_broker_or_with_a_dead_one_is_a_configuration_error(cfg):
    ids = batch_ids(N)[:2]
    code, out, err = cli(cfg, "migrate", *ids, "--engine", "celery")
    assert code == 2 and "no broker given; set ETL_BROKER_URL" in err and err.count("\n") == 1, err
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    dead = f"redis://:secret-word@127.0.0.1:{port}/0"
    for argv in (["migrate", *ids, "--engine", "celery"], ["worker"]):
        code, out, err = cli(cfg, *argv, env={"ETL_BROKER_URL": dead})
        assert code == 2, (argv, err)
        assert f"cannot reach the broker at redis://:***@127.0.0.1:{port}/0" in err and "secret-word" not in err
        assert "internal error" not in err and err.count("\n") == 1, err
    assert listing(cfg) == {}


def test_half_set_credentials_name_the_missing_one(cfg):
    env = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_EC2_METADATA_DISABLED": "true"}
    full = {k: v for k, v in os.environ.items() if k not in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID")}
    full.update(env)
    run = subprocess.run([sys.executable, "-m", "etl", "status", "--bucket", cfg.bucket, "--s3-endpoint-url",
                          cfg.s3_endpoint_url], capture_output=True, text=True, env=full, timeout=120, cwd=ROOT)
    assert run.returncode == 2 and "credentials are incomplete: AWS_SECRET_ACCESS_KEY is missing" in run.stderr
    assert "network" not in run.stderr and run.stderr.count("\n") == 1


def test_json_logs_are_json_to_the_last_line_and_a_batch_logs_one_info_line_per_course(cfg):
    ids = batch_ids(N)
    code, out, err = cli(cfg, "migrate", *ids, "--log-format", "json")
    assert code == 0, err
    lines = [json.loads(line) for line in err.splitlines()]  # every line is JSON
    info = [e for e in lines if e["level"] == "INFO" and e.get("course") != "*"]
    assert sorted(e["course"] for e in info) == sorted(ids) and {e["event"] for e in info} == {"course_promoted"}
    code, out, err = cli(cfg, "verify", "course-v1:No+Such+Course", "--log-format", "json")
    final = json.loads(err.strip().splitlines()[-1])
    assert code == 2 and final["level"] == "ERROR" and final["exit_code"] == 2
    assert "unknown course course-v1:No+Such+Course" in final["error"]
    code, out, err = cli(cfg, "migrate", "--dryrun", "--log-format", "json")
    assert code == 2 and json.loads(err)["error"].startswith("migrate: unknown flag --dryrun")


def test_the_words_and_numbers_an_operator_reads(cfg):
    ids = batch_ids(N)
    code, out, err = cli(cfg, "migrate", ids[1])
    assert code == 0 and out.startswith("1 course in ") and "1 courses" not in out, out
    code, out, err = cli(cfg, "--version", target=False)
    assert code == 0 and out.strip() == etl.__version__
    code, out, _ = cli(cfg, "migrate", "--help", target=False)
    assert "(default 4)" in out and "(default 16)" in out
    rows = [line for line in out.splitlines() if line.startswith("  --")]
    widths = {len(line) - len(line.split(maxsplit=1)[1]) for line in rows}  # where each help text starts
    assert len(widths) == 1, "the help's columns do not line up"
    code, out, _ = cli(cfg, "status", "--help", target=False)
    assert "pandas" not in out and "DataFrame" not in out
    code, out, _ = cli(cfg, "demo", "--help", target=False)
    assert "--bucket" not in out and "--quiet" in out
    code, out, err = cli(cfg, "extract", ids[3])
    code, out, err = cli(cfg, "promote", ids[3])
    code, out, _ = cli(cfg, "history", ids[3], "--format", "json")
    staged = [e for e in json.loads(out) if e["event"] == "staged"]
    assert staged and all(e["previous"] for e in staged)
    code, out, err = cli(cfg, "rollback", ids[3], "--force")
    assert code == 0, err
    code, out, _ = cli(cfg, "status", ids[3], "--format", "json")
    row = json.loads(out)[0]
    assert row["state"] == "rolled_back" and row["transcripts"] is None and row["bytes"] is None
