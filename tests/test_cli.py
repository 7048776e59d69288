import json
import os
import subprocess
import sys

import pytest

from etl.cli.main import main
from tests.conftest import COURSE, fill
from tests.helpers import run_cli


@pytest.fixture
def run(cfg, contentstore, tmp_path, capsys):
    """Run the CLI in-process against the test's bucket and contentstore; return (code, out, err)."""
    return lambda *args: run_cli(cfg, contentstore, capsys, tmp_path / "m", *args)


def test_extract_promote_verify_status_from_the_command_line(run, contentstore):
    fill(contentstore)
    code, out, err = run("extract", COURSE)
    assert code == 0 and out.startswith(f"staged {COURSE} run ") and "9 transcripts" in out
    code, out, _ = run("reconcile", COURSE)
    assert code == 0 and "checksums match" in out
    code, out, _ = run("promote", COURSE)
    assert code == 0 and out.startswith(f"promoted {COURSE}")
    code, out, _ = run("verify", COURSE, "--format", "json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, _ = run("status", "--format", "json")
    assert code == 0 and json.loads(out)[0]["state"] == "promoted"
    code, out, _ = run("status", "--format", "csv")
    assert out.splitlines()[0].startswith("course_id,state,run_id") and "promoted" in out
    code, out, _ = run("status", COURSE)
    assert code == 0 and "promoted" in out and COURSE in out


def test_refusals_and_failures_exit_with_documented_codes_and_one_line(run, contentstore):
    fill(contentstore)
    code, _, err = run("promote", COURSE)
    assert code == 3 and err.count("\n") == 1 and err.startswith("etl: error: course ") and "Traceback" not in err
    code, _, err = run("extract", "../../etc")
    assert code == 2 and err.count("\n") == 1
    code, out, err = run("verify", COURSE)
    assert code == 5 and "NOT READY" in out and err.count("\n") == 1
    run("extract", COURSE)
    run("promote", COURSE)
    code, _, err = run("rollback", COURSE)
    assert code == 3 and "--force" in err
    code, out, _ = run("rollback", COURSE, "--force")
    assert code == 0 and "the commit replaced with a release" in out


def cli(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "etl", *args], capture_output=True, text=True,
                          env=full_env, timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_environment_configures_the_cli_and_a_flag_wins(cfg):
    env = {"ETL_BUCKET": "no-such-bucket-anywhere", "ETL_S3_ENDPOINT_URL": cfg.s3_endpoint_url}
    assert cli("status", "--bucket", cfg.bucket, env=env).stdout.strip() == "no courses in the status table yet"
    failed = cli("status", env=env)
    assert failed.returncode == 2 and "no-such-bucket-anywhere" in failed.stderr and "does not exist" in failed.stderr
    assert "Traceback" not in failed.stderr and failed.stderr.count("\n") == 1


def test_debug_shows_the_traceback(cfg):
    env = {"ETL_S3_ENDPOINT_URL": cfg.s3_endpoint_url}
    assert "Traceback" in cli("status", "--bucket", "no-such-bucket-anywhere", "--debug", env=env).stderr


def test_missing_bucket_and_help(cfg):
    missing = cli("status")
    assert missing.returncode == 2 and "ETL_BUCKET" in missing.stderr
    helped = cli("promote", "--help")
    assert "commit marker" in helped.stdout + helped.stderr


def test_passwords_in_mongo_uris_never_reach_the_output(cfg):
    secret = "s3cr3t-Pa55"
    result = cli("extract", COURSE, "--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url,
                 env={"ETL_MONGO_URI": f"mongodb://admin:{secret}@"})
    assert result.returncode == 2 and secret not in result.stdout + result.stderr
    assert "admin:***@" in result.stderr


def test_old_style_course_ids_pass_through_the_command_line(run, contentstore):
    from etl.demo.sample import save_asset

    save_asset(contentstore, "edX/DemoX/Demo_Course", "subs_x.srt.sjson", b'{"start":[],"end":[],"text":[]}')
    assert run("extract", "edX/DemoX/Demo_Course")[0] == 0
    code, out, _ = run("status", "--format", "json")
    assert json.loads(out)[0]["course_id"] == "edX/DemoX/Demo_Course" and json.loads(out)[0]["state"] == "staged"


def test_migrate_and_report_from_the_command_line(run, cfg, contentstore, tmp_path):
    from tests.batch import build_batch

    ids = build_batch(contentstore, 6)
    listed = tmp_path / "courses.txt"
    listed.write_text("# pilot batch\n" + "\n".join(f"{c}   # course {i}" for i, c in enumerate(ids[:4])) + "\n\n")
    code, out, _ = run("migrate", "--courses", str(listed), "--dry-run")
    assert code == 0 and "to migrate: 4 courses" in out
    code, out, _ = run("migrate", "--courses", str(listed), "--workers", "2")
    assert code == 0 and "4 promoted" in out
    code, out, _ = run("migrate", ids[4], ids[5], "--format", "json")
    assert code == 0 and json.loads(out)["promoted"] == 2
    code, out, _ = run("report", "--ready-only")
    assert code == 0 and sorted(out.split()) == sorted(ids)
    code, out, _ = run("report", "--format", "csv")
    assert out.splitlines()[0] == ("course_id,contentstore_count,live_count,marker_count,state,last_error,ready,"
                                   "reason,next_step,phase2")
    code, out, err = run("migrate", ids[0], "--all")
    assert code == 2 and "--all is every course" in err


def test_migrate_exits_non_zero_when_a_course_fails_and_logs_json_lines(cfg, contentstore, tmp_path, capsys):
    from tests.test_contentstore import corrupt

    corrupt(contentstore, COURSE, "subs_bad.srt.sjson", "missing chunk")
    argv = ["migrate", COURSE, "--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url,
            "--retries", "0", "--log-format", "json", "--manifest-dir", ""]
    with pytest.raises(SystemExit) as exit_:
        main(argv, contentstore=contentstore)
    out, err = capsys.readouterr()
    assert exit_.value.code == 4 and "1 of 1 courses failed" in err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    failed = [e for e in events if e["event"] == "course_failed"]
    assert failed and failed[0]["course"] == COURSE and "subs_bad.srt.sjson" in failed[0]["error"]
    assert {"time", "level", "course", "event"} <= set(events[0])
