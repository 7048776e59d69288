"""The hand-off: which of a committed course's transcripts edx-val can serve in place, read through indexes only."""

import os

import pytest

import etl
from etl.handoff import COLUMNS, STATUSES, read
from etl.demo.sample import cues, register_course, save_asset, sjson, srt
from etl.model.layout import Layout, parse_course_id
from tests.olx import load_videos
from tests.test_real_exports import DATA, import_static

DEMO, DEMO_ID = "openedx-demo-course", "course-v1:OpenedX+DemoX+DemoCourse"
OLD_EXPORT, OLD_ID = "edx-demox-2015-export", "edX/DemoX/Demo_Course"


def migrated_export(cfg, db, export, course_id):
    import_static(db, export, course_id)  # skips when ../shared/data is absent
    register_course(db, course_id)
    blocks = load_videos(db, os.path.join(DATA, export), course_id)
    assert etl.migrate(cfg, [course_id]).exit_code == 0
    return blocks


def test_the_demo_course_gives_one_ok_row_per_video_and_language_its_olx_names(cfg, contentstore):
    blocks = migrated_export(cfg, contentstore, DEMO, DEMO_ID)
    named = {(f["edx_video_id"], lang) for f in blocks.values() if f.get("edx_video_id")
             for lang, name in (f.get("transcripts") or {}).items() if name}
    assert len(named) >= 6
    df = etl.handoff(cfg, DEMO_ID)
    ok = df[df["status"] == "ok"]
    assert set(zip(ok["edx_video_id"], ok["language"])) == named
    assert set(ok["branch"]) == {"published", "draft"}
    assert (ok["file_format"] == "srt").all() and ok["storage_name"].equals(ok["live_key"])
    commit = etl.committed(cfg, DEMO_ID)
    assert all(k.startswith(commit["transcripts_prefix"]) for k in ok["live_key"])
    assert set(df["status"]) <= set(STATUSES)
    stored, meta = read(cfg, parse_course_id(DEMO_ID))
    assert len(stored) == len(df) and meta["epoch"] == str(commit["epoch"])
    assert meta["manifest_key"] == commit["manifest_key"]


def test_the_2015_courses_videos_have_no_edx_video_id_and_are_reported_never_ok(cfg, contentstore):
    migrated_export(cfg, contentstore, OLD_EXPORT, OLD_ID)
    df = etl.handoff(cfg, OLD_ID)
    assert len(df) > 0 and set(df["status"]) == {"no_edx_video_id"}
    assert df["usage_key"].str.startswith("i4x://edX/DemoX/").all()
    assert {"published", "draft"} == set(df["branch"])
    assert df["live_key"].notna().any()  # resolved all the same, through sub and the youtube ids


def test_a_course_that_is_not_committed_is_refused(cfg, contentstore):
    register_course(contentstore, DEMO_ID)
    with pytest.raises(etl.NotCommitted, match="not committed"):
        etl.handoff(cfg, DEMO_ID)
    assert read(cfg, parse_course_id(DEMO_ID)) == (None, None)


def test_missing_unparseable_and_too_long_transcripts_each_say_so(cfg, contentstore):
    course = "course-v1:Hand+Off+2026"
    register_course(contentstore, course)
    long_name = "v" * 230 + "-en.srt"
    save_asset(contentstore, course, "good-en.srt", srt(cues(3)))
    save_asset(contentstore, course, "sjson-named-srt-fr.srt", sjson(cues(2)))  # the bytes say SJSON
    save_asset(contentstore, course, "broken-de.srt", b"\x00\x01 not a transcript")
    save_asset(contentstore, course, long_name, srt(cues(2)))
    save_asset(contentstore, course, "subs_legacy1.srt.sjson", sjson(cues(2)))
    db = contentstore
    index = db["modulestore.active_versions"].find_one({"org": "Hand"})
    blocks = [
        {"block_type": "video", "block_id": "a", "fields": {"edx_video_id": "vid-a", "transcripts": {
            "en": "good-en.srt", "fr": "sjson-named-srt-fr.srt", "de": "broken-de.srt", "it": "gone-it.srt"}}},
        {"block_type": "video", "block_id": "b", "fields": {"edx_video_id": "vid-b", "transcripts": {"en": long_name}}},
        {"block_type": "video", "block_id": "c", "fields": {"sub": "legacy1"}},
    ]
    for branch in ("published", "draft"):
        db["modulestore.structures"].insert_one({"_id": index["versions"][f"{branch}-branch"], "blocks": blocks})
    etl.migrate(cfg, [course])
    df = etl.handoff(cfg, course, storage_location="").query("branch == 'published'").set_index(
        ["usage_key", "language"])
    a, b, c = (f"block-v1:Hand+Off+2026+type@video+block@{x}" for x in "abc")
    assert df.loc[(a, "en"), "status"] == "ok" and df.loc[(a, "en"), "file_format"] == "srt"
    assert df.loc[(a, "fr"), "status"] == "ok" and df.loc[(a, "fr"), "file_format"] == "sjson"
    assert df.loc[(a, "de"), "status"] == "parse_error"
    assert df.loc[(a, "it"), "status"] == "asset_missing"
    assert df.loc[(b, "en"), "status"] == "name_too_long"
    assert df.loc[(c, "en"), "status"] == "no_edx_video_id"
    assert df.loc[(c, "en"), "asset_name"] == "subs_legacy1.srt.sjson"
    assert Layout(cfg, parse_course_id(course)).handoff.endswith(".parquet")


def test_the_cli_hands_off_prints_a_summary_and_writes_every_row(cfg, contentstore, capsys, tmp_path):
    import json

    from tests.helpers import run_cli

    migrated_export(cfg, contentstore, DEMO, DEMO_ID)
    register_course(contentstore, "course-v1:Not+Yet+2026")
    out_file = tmp_path / "handoff.json"
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "handoff", DEMO_ID, "-o", str(out_file))
    assert code == 0, err
    assert out.startswith(f"{DEMO_ID}: epoch 1, ") and " ok" in out and f"wrote {out_file}" in out
    rows = json.loads(out_file.read_text())
    assert rows and set(rows[0]) == set(COLUMNS)
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "handoff", "course-v1:Not+Yet+2026")
    assert code == 3 and "not committed" in err and "python -m etl migrate" in err
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "handoff", "course-v1:OpenedX+DemoX+DemoCorse")
    assert code == 2 and "unknown" in err and f"did you mean {DEMO_ID}" in err and len(err.splitlines()) == 1
    code, out, err = run_cli(cfg, contentstore, capsys, tmp_path, "handoff", DEMO_ID, "--all")
    assert code == 2 and "--all is every course" in err


def test_a_course_with_transcripts_but_no_video_blocks_says_so(cfg, contentstore):
    from etl.handoff import summary

    course_id = "course-v1:Hand+NoVideos+2026"
    register_course(contentstore, course_id)
    save_asset(contentstore, course_id, "subs_orphan.srt.sjson", sjson(cues(2)))
    assert etl.migrate(cfg, [course_id]).exit_code == 0
    df = etl.handoff(cfg, course_id)
    assert len(df) == 0 and summary(df).endswith("0 rows: no video blocks name its 1 committed transcripts")
