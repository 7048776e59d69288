"""What the operator reads is true, round 4: output files, dry runs that predict, exit codes, clean machine output.

Each case runs the real CLI against moto's server (in this process, or in a
process of its own where stderr as a whole is the point) and checks the exit
code, the text, and what S3 and the disk hold afterwards.
"""

import csv
import io
import json
import os
import re

import etl
from etl.demo.sample import cues, register_course, save_asset, sjson
from tests.batch import batch_ids, build_course
from tests.helpers import listing, run_cli
from tests.test_operator_view import N, cli
from tests.test_real_exports import DATA, import_static
from tests.olx import load_videos

DEMO, DEMO_ID = "openedx-demo-course", "course-v1:OpenedX+DemoX+DemoCourse"


def demo(cfg, db):
    import_static(db, DEMO, DEMO_ID)
    register_course(db, DEMO_ID)
    load_videos(db, os.path.join(DATA, DEMO), DEMO_ID)
    assert etl.migrate(cfg, [DEMO_ID]).exit_code == 0


def test_handoff_all_writes_the_file_it_is_given_and_o_dash_gives_the_rows_alone_on_stdout(cfg, contentstore, capsys,
                                                                                            tmp_path):
    demo(cfg, contentstore)
    for name in ("rows.csv", "rows.json"):
        out_file = tmp_path / name
        code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "handoff", "--all", "-o", str(out_file))
        assert code == 0 and out_file.is_file() and f"wrote {out_file}" in out, err
    assert json.loads((tmp_path / "rows.json").read_text())
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "handoff", DEMO_ID, "-o", "-")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert out.splitlines()[0].startswith("course_id,usage_key,") and rows and rows[0]["course_id"] == DEMO_ID
    assert f"etl: {DEMO_ID}: epoch 1, " in err  # the summary, beside the data


def test_a_rollback_dry_run_of_a_promoted_course_without_force_refuses_as_the_run_does(cfg, contentstore, capsys,
                                                                                        tmp_path):
    build_course(contentstore, "course-v1:Round+Four+2026", n=2)
    etl.migrate(cfg, ["course-v1:Round+Four+2026"])
    before = listing(cfg)
    runs = [run_cli(cfg, contentstore, capsys, tmp_path, "rollback", "course-v1:Round+Four+2026", *dry)
            for dry in (["--dry-run"], [])]
    assert [code for code, _, _ in runs] == [3, 3] and runs[0][2] == runs[1][2], runs
    assert "is promoted and may be live in Phase II; nothing was deleted" in runs[0][2] and listing(cfg) == before


def test_diff_of_a_misspelt_course_or_a_missing_manifest_is_a_usage_error(cfg, contentstore, capsys, tmp_path):
    course = "course-v1:Round+Four+2026"
    build_course(contentstore, course, n=2)
    etl.migrate(cfg, [course])
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "diff", course.replace("Four", "Fuor"))
    assert code == 2 and f"did you mean {course}?" in err and out == ""
    doc = etl.committed(cfg, course)
    local = tmp_path / "a.parquet"
    local.write_bytes(cfg.s3.get_object(Bucket=cfg.bucket, Key=doc["manifest_key"])["Body"].read())
    missing = f"s3://{cfg.bucket}/{re.sub(r'/e[0-9]+/', '/e9/', doc['manifest_key'])}"
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "diff", str(local), missing)
    assert code == 2 and f"no manifest at {missing}" in err and "credentials" not in err


def test_status_and_report_in_json_logs_print_only_json_on_stderr(cfg):
    course = batch_ids(N)[1]
    assert cli(cfg, "migrate", course)[0] == 0
    for argv in (["status", "--log-format", "json"], ["report", "--log-format", "json"],
                 ["status", "--state", "failed", "--log-format", "json"]):
        code, out, err = cli(cfg, *argv)
        assert code == 0, err
        assert all(isinstance(json.loads(line), dict) for line in err.splitlines() if line.strip()), (argv, err)
        assert "FutureWarning" not in err


def test_an_sjson_with_no_cues_is_flagged_as_an_srt_with_none_is(cfg, contentstore):
    course = "course-v1:Round+Empty+2026"
    register_course(contentstore, course)
    save_asset(contentstore, course, "subs_none.srt.sjson", b'{"start": [], "end": [], "text": []}')
    save_asset(contentstore, course, "subs_some.srt.sjson", sjson(cues(2)))
    result = etl.extract(cfg, course)
    assert result.parse_problems == 1
    rows = etl.diff(cfg, course).set_index("asset_name")
    assert rows.loc["subs_none.srt.sjson", "parse_error"] == "no SJSON cues"


def test_status_of_a_state_no_course_is_in_says_so_of_the_table_it_read(cfg, contentstore, capsys, tmp_path):
    build_course(contentstore, "course-v1:Round+Four+2026", n=2)
    etl.migrate(cfg, ["course-v1:Round+Four+2026"])
    code, out, _ = run_cli(cfg, contentstore, capsys, tmp_path, "status", "--state", "failed")
    assert code == 0 and out.strip() == "no course is failed (1 course in the status table)"


def test_diff_all_counts_the_reports_it_wrote_and_report_lists_unresolved_transcripts(cfg, contentstore, capsys,
                                                                                       tmp_path):
    build_course(contentstore, "course-v1:Round+Four+2026", n=2)
    save_asset(contentstore, "Stray/Old/Run", "subs_stray.srt.sjson", sjson(cues(1)))  # no course document
    etl.migrate(cfg, "all")
    folder = tmp_path / "pack"
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "diff", "--all", "-o", str(folder))
    written = [p for p in os.listdir(folder) if not p.startswith("index.")]
    assert code == 0 and f"wrote {len(written)} course report and {folder}/index.html" in out, (out, err)
    assert "the index also lists 1 unresolved group" in out
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "report", "--format", "csv")
    rows = {r["course_id"]: r for r in csv.DictReader(io.StringIO(out))}
    assert rows["unresolved: Stray/Old/?"]["ready"] == "False" and "no course document" in \
        rows["unresolved: Stray/Old/?"]["reason"]


def test_a_mongodb_uri_with_an_unescaped_at_says_to_percent_encode_it(cfg):
    code, _, err = cli(cfg, "extract", batch_ids(N)[1], env={"ETL_MONGO_URI": "mongodb://etl:p@ss@mongo:27017/"},
                       n=0)
    assert code == 2 and "must be percent-encoded" in err and "p@ss" not in err


def test_a_refused_promote_says_its_reason_once(cfg, contentstore, capsys, tmp_path):
    course = "course-v1:Round+Four+2026"
    build_course(contentstore, course, n=2)
    etl.extract(cfg, course)
    save_asset(contentstore, course, "video1-en.srt", b"1\n00:00:00,000 --> 00:00:01,000\nedited\n")
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "promote", course)
    assert code == 3 and err.count("video1-en.srt") == 1, err


def test_history_cuts_long_cells_in_its_table_and_never_in_csv(cfg, contentstore, capsys, tmp_path):
    course = "course-v1:Round+Four+2026"
    build_course(contentstore, course, n=2)
    etl.extract(cfg, course)
    long_name = "x" * 300 + "-en.srt"
    save_asset(contentstore, course, long_name, b"1\n00:00:00,000 --> 00:00:01,000\nnew\n")
    run_cli(cfg, contentstore, capsys, tmp_path, "promote", course)
    code, out, _ = run_cli(cfg, contentstore, capsys, tmp_path, "history", course)
    assert code == 0 and max(len(line) for line in out.splitlines()) < 400 and "…" in out
    code, out, _ = run_cli(cfg, contentstore, capsys, tmp_path, "history", course, "--format", "csv")
    assert long_name in out


def test_the_readme_lists_every_setting_the_tool_reads_from_the_environment():
    from etl.model.config import ENV, IDENTITY

    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    for name in list(ENV.values()) + list(IDENTITY.values()) + ["ETL_MANIFEST_DIR"]:
        assert f"`{name}`" in readme, name
