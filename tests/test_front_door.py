"""The front door: every command line is checked whole before anything is read or written.

A mistyped flag, a bad value, a stray argument, a switch given a value, a wrong
database or an unknown course exits 2 with one line naming the problem, and the
bucket and the local files are exactly as they were.
"""

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

import etl
from etl.cli.commands import COMMANDS
from etl.cli.main import main
from etl.demo.sample import register_course, save_asset, srt, cues
from tests.batch import batch_ids
from tests.conftest import COURSE, fill
from tests.helpers import listing, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# command: (arguments that would run it, a misspelled flag, a flag with a bad value, a stray argument)
CASES = {
    "extract": ([COURSE], ["--fromat", "json"], ["--format", "yaml"], ["extra"]),
    "reconcile": ([COURSE], ["--formt", "json"], ["--format", "csv"], ["extra"]),
    "promote": ([COURSE], ["--live-prefx", "phase2"], ["--s3-concurrency", "0"], ["extra"]),
    "verify": ([COURSE], ["--fromat", "json"], ["--s3-concurrency", "many"], ["extra"]),
    "rollback": ([COURSE], ["--froce"], ["--force=yes"], ["extra"]),
    "status": ([], ["--fromat", "csv"], ["--format", "yaml"], [COURSE, "extra"]),
    "history": ([COURSE], ["--formta", "csv"], ["--format", "xml"], ["extra"]),
    "migrate": ([COURSE], ["--dryrun"], ["--workers", "abc"], ["--all"]),
    "report": ([], ["--ready-onyl"], ["--workers", "0"], ["extra"]),
    "diff": ([COURSE], ["--ouput", "-"], ["--format", "pdf"], ["a.parquet", "b.parquet"]),
    "demo": ([], ["--quite"], ["--quiet=1"], ["extra"]),
    "version": ([], ["--debgu"], ["--log-format", "xml"], ["extra"]),
    "worker": ([], ["--concurency", "3"], ["--concurrency", "0"], ["extra"]),
    "vacuum": ([COURSE], ["--retain-dyas", "0"], ["--retain-days", "-1"], ["--all"]),
    "handoff": ([COURSE], ["--as-parsd"], ["--all=yes"], ["--all"]),
    "tasks": ([COURSE], ["--courss", "ids.txt"], ["--format", "yaml"], ["--format"]),
}


def test_every_command_is_in_the_table():
    assert set(CASES) == set(COMMANDS)


@pytest.fixture
def front(cfg, contentstore, tmp_path, capsys):
    """A staged course, and a runner of the CLI that reports (code, out, err) and what changed."""
    fill(contentstore)
    etl.extract(cfg, COURSE)
    capsys.readouterr()  # what the setup logged is not the command's
    local = tmp_path / "m"

    def files():
        return sorted(str(p) for p in local.rglob("*")) if local.exists() else []

    def call(*args):
        before, before_files = listing(cfg), files()
        code, out, err = run_cli(cfg, contentstore, capsys, local, *args)
        return code, out, err, listing(cfg) == before and files() == before_files
    return call


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("kind", ["unknown flag", "misspelled flag", "bad value", "stray argument"])
def test_a_bad_command_line_exits_2_and_changes_nothing(front, name, kind):
    args, misspelled, bad, stray = CASES[name]
    extra = {"unknown flag": ["--no-such-flag"], "misspelled flag": misspelled, "bad value": bad,
             "stray argument": stray}[kind]
    code, out, err, unchanged = front(name, *args, *extra)
    assert code == 2, (out, err)
    assert unchanged and out == ""
    assert err.startswith("etl: error: ") and err.count("\n") == 1 and "Traceback" not in err
    if kind == "misspelled flag":
        assert "did you mean --" in err and misspelled[0] in err


def test_a_switch_never_takes_the_next_word_as_its_value(front):
    code, _, err, unchanged = front("migrate", "--all", COURSE)
    assert code == 2 and unchanged and "--all is every course" in err
    code, _, err, unchanged = front("migrate", "--all", "--courses", "list.txt")
    assert code == 2 and unchanged


def test_no_wait_belongs_to_the_celery_engine(front):
    code, _, err, unchanged = front("migrate", COURSE, "--no-wait")
    assert code == 2 and unchanged and "--engine celery" in err
    code, _, err, unchanged = front("migrate", COURSE, "--engine", "spark")
    assert code == 2 and unchanged and "threads, celery" in err


def test_a_typo_in_a_batch_flag_publishes_nothing(front, cfg):
    code, _, err, unchanged = front("migrate", "--all", "--dryrun")
    assert code == 2 and unchanged and "--dry-run" in err
    code, _, err, unchanged = front("migrate", COURSE, "--live-prefx", "phase2")
    assert code == 2 and unchanged and "--live-prefix" in err
    assert etl.committed(cfg, COURSE) is None


def test_no_command_prints_help_to_stderr_and_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == "" and "usage: python -m etl COMMAND" in err


def test_help_goes_to_stdout_with_the_flags_as_the_readme_spells_them(capsys):
    main(["migrate", "--help"])
    out, err = capsys.readouterr()
    assert err == "" and "INFO" not in out and "Type:" not in out
    for flag in ("--dry-run", "--workers", "--s3-endpoint-url", "--modulestore-db", "--debug", "--courses"):
        assert flag in out
    assert "--s3_endpoint_url" not in out and "--dry_run" not in out


def test_every_flag_in_the_help_is_in_the_readme_and_no_other():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    flags = {f"--{key.replace('_', '-')}" for cmd in COMMANDS.values() for key in cmd.flags}
    import re

    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]", section))
    assert flags - mentioned == set(), "flags missing from the README's Command line section"
    typos = {"--dryrun"}  # the README shows this one as the mistake it is
    assert mentioned - flags - {"--help", "--version"} - typos == set(), "the README names flags the CLI does not have"


def test_a_database_without_a_contentstore_is_refused_up_front(front):
    code, _, err, unchanged = front("extract", COURSE, "--mongo-db", "edxap")
    assert code == 2 and unchanged and "database edxap has no contentstore" in err and "--mongo-db" in err


def test_an_unknown_course_is_refused_before_anything_is_written(front, cfg):
    code, _, err, unchanged = front("extract", "course-v1:edX+DemoX+2042_T1")
    assert code == 2 and unchanged and "unknown course course-v1:edX+DemoX+2042_T1" in err and "--modulestore-db" in err
    assert "did you mean course-v1:edX+DemoX+2024_T1?" in err
    typo = "course-v1:edX+DemoX+2042_T1"  # of course-v1:edX+DemoX+2024_T1, which the fixture staged
    for args in (["migrate", typo], ["migrate", typo, "--dry-run"], ["verify", typo], ["status", typo]):
        code, out, err, unchanged = front(*args)
        assert code == 2 and unchanged and out == "", (args, out, err)
        assert err.count("\n") == 1 and f"unknown course {typo}" in err, (args, err)
        assert f"did you mean {COURSE}?" in err and "nothing was done" in err, (args, err)
    code, out, _, _ = front("report", "--ready-only")
    assert "2042" not in out


def test_a_known_course_without_transcripts_still_promotes_with_count_0(front, cfg, contentstore):
    register_course(contentstore, "course-v1:edX+Empty+2026")
    code, out, _, _ = front("migrate", "course-v1:edX+Empty+2026")
    assert code == 0 and "1 promoted" in out
    assert etl.committed(cfg, "course-v1:edX+Empty+2026")["transcripts"] == 0


def test_a_modulestore_in_another_database_is_found_with_modulestore_db(front, contentstore):
    register_course(contentstore.client["edxapp_modulestore"], "course-v1:edX+Elsewhere+2026")
    assert front("extract", "course-v1:edX+Elsewhere+2026")[0] == 2
    code, out, err, _ = front("extract", "course-v1:edX+Elsewhere+2026", "--modulestore-db", "edxapp_modulestore")
    assert code == 0, err


def test_migrate_exits_non_zero_for_every_course_it_left_undone(front, cfg, contentstore):
    code, _, _, _ = front("promote", COURSE)
    assert code == 0
    save_asset(contentstore, COURSE, "subs_abc.srt.sjson", srt(cues(7, "edited after promote")))
    code, out, err, _ = front("migrate", COURSE)
    assert code == 5 and "not ready" in out and "edited in the contentstore since promote" in out
    assert "not ready for Phase II" in err and err.count("\n") == 1
    code, out, _, _ = front("report", "--format", "json")
    row = [r for r in json.loads(out) if r["course_id"] == COURSE][0]
    assert row["ready"] is False and "subs_abc.srt.sjson" in row["reason"]
    assert "rollback" in row["next_step"] and "--force" in row["next_step"]
    other = "course-v1:edX+Foreign+2026"
    save_asset(contentstore, other, "a.srt", srt(cues(2)))
    cfg.s3.put_object(Bucket=cfg.bucket, Key=f"{cfg.live_prefix}/{other}/transcripts/a.srt", Body=b"by hand")
    code, out, err, _ = front("migrate", other)
    assert code == 3 and "conflict" in out and "left undone" in err


def test_counts_print_as_whole_numbers(front):
    import csv
    import io

    front("promote", COURSE)
    code, out, _, _ = front("status", "--format", "csv")
    row = next(csv.DictReader(io.StringIO(out)))
    assert row["transcripts"] == "9" and row["pid"].isdigit()  # not 9.0; a timestamp's "…9.020Z" is no count
    _, out, _, _ = front("report")
    assert " 9 " in out and not re.search(r"(?<![\d:])9\.0\b", out)


def test_diff_to_standard_output_with_o_dash(front):
    code, out, err, _ = front("diff", COURSE, "--format", "csv", "-o", "-")
    assert code == 0 and out.startswith("asset_name,mark,") and "error" not in err.replace("error=", "")


def test_rollback_dry_run_lists_exactly_what_would_go_and_changes_nothing(front, cfg):
    front("promote", COURSE)
    live = sorted(k for k in listing(cfg, cfg.live_prefix + "/") if not k.endswith("/_COMMIT.json"))
    code, out, _, unchanged = front("rollback", COURSE, "--force", "--dry-run", "--format", "json")
    assert code == 0 and unchanged
    result = json.loads(out)
    assert result["dry_run"] and result["was_promoted"] and sorted(result["would_delete"]) == live
    code, out, err, unchanged = front("rollback", COURSE, "--dry-run")  # without --force: refused, as the run is
    assert code == 3 and unchanged and out == "" and "is promoted and may be live in Phase II" in err
    code, out, err, unchanged = front("rollback", "course-v1:Never+Touched+2026")
    assert code == 2 and unchanged and "unknown course course-v1:Never+Touched+2026" in err


def cli(*args, env=None, stdout=subprocess.PIPE):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "etl", *args], stdout=stdout, stderr=subprocess.PIPE, text=True,
                          env=full_env, timeout=120, cwd=ROOT)


def test_no_credentials_says_so(cfg):
    env = {k: "" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE")}
    env.update(AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent",
               AWS_EC2_METADATA_DISABLED="true", AWS_CONTAINER_CREDENTIALS_FULL_URI="",
               AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="")
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_", "AWS_"))}
    full.update({k: v for k, v in env.items() if v})
    result = subprocess.run([sys.executable, "-m", "etl", "status", "--bucket", cfg.bucket, "--s3-endpoint-url",
                             cfg.s3_endpoint_url], capture_output=True, text=True, env=full, timeout=120, cwd=ROOT)
    assert result.returncode == 2 and "no AWS credentials found" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_missing_bucket_stops_a_batch_before_its_first_course(cfg):
    result = cli("migrate", "--courses", "/dev/null", "--bucket", "etl-no-such-bucket-0815",
                 "--s3-endpoint-url", cfg.s3_endpoint_url, "--mongo-uri", "mongodb://127.0.0.1:1/")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "does not exist" in result.stderr


def test_a_broken_pipe_exits_quietly(cfg):
    proc = subprocess.Popen([sys.executable, "-m", "etl", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=ROOT)
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(60)
    assert "internal error" not in err and "Traceback" not in err and err == ""


def read_pty(fd, until, timeout=120):
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
            if until(data):
                break
    return data


def test_the_progress_bar_stays_on_the_bottom_line_and_ends_at_n_of_n(cfg):
    n = 8
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on a terminal
        os.chdir(ROOT)
        os.execv(sys.executable, [sys.executable, "-m", "tests.children.cli", str(n), "0", "migrate",
                                  *batch_ids(n), "--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url,
                                  "--manifest-dir", "", "--workers", "2"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal has a size
    output = read_pty(fd, lambda d: b"transcripts/s" in d)
    os.waitpid(pid, 0)
    text = output.decode(errors="replace")
    pieces = [p for p in re.split(r"[\r\n]+", text) if p.strip()]
    bars = [p for p in pieces if p.startswith("courses:")]
    assert bars and f"{n}/{n}" in bars[-1] and "100%" in bars[-1]
    logged = [p for p in pieces if "event=" in p]
    assert len(logged) > n and all(p.startswith("20") for p in logged), "a log line was written onto the bar"


def test_ctrl_c_in_a_batch_says_the_work_in_flight_finished_and_how_to_resume(cfg):
    n = 30
    proc = subprocess.Popen([sys.executable, "-m", "tests.children.cli", str(n), "0", "migrate", *batch_ids(n),
                             "--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url, "--manifest-dir", "",
                             "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for line in proc.stderr:
        if "event=course_promoted" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "re-run the same command to resume" in err and "the course was rolled back" not in err
    final = err.strip().splitlines()[-1]
    assert "before the stop: " in final and " promoted" in final and f"of {n} courses left undone" in final


def test_ctrl_c_in_a_plan_says_nothing_was_written_and_what_was_planned(cfg):
    n = 30
    proc = subprocess.Popen([sys.executable, "-m", "tests.children.cli", str(n), "0", "migrate", *batch_ids(n),
                             "--dry-run", "--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url,
                             "--manifest-dir", "", "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    for line in proc.stderr:
        if "event=course_migrate" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    final = err.strip().splitlines()[-1]
    assert proc.returncode == 130 and "courses already running were finished" not in err
    assert "the plan was stopped before it finished; nothing was written; before the stop: " in final, final
    assert " to migrate" in final and f"of {n} courses left undone" in final
    assert listing(cfg) == {}
