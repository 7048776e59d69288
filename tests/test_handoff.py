"""The hand-off: which committed transcripts the LMS serves, resolved as get_transcript_from_contentstore does."""

import os

import pytest

import etl
from etl.handoff import COLUMNS, STATUSES, read
from etl.demo.sample import cues, register_course, save_asset, save_upload, sjson, srt
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


def test_the_demo_course_serves_spanish_and_english_only_with_the_flag_as_the_lms_never_reads_its_name(
        cfg, contentstore):
    blocks = migrated_export(cfg, contentstore, DEMO, DEMO_ID)
    named = {(f["edx_video_id"], lang) for f in blocks.values() if f.get("edx_video_id")
             for lang, name in (f.get("transcripts") or {}).items() if name}
    assert len(named) == 6 and {lang for _, lang in named} == {"en", "es"}
    df = etl.handoff(cfg, DEMO_ID)
    ok = df[df["status"] == "ok"]
    # sub is '' and the LMS sets transcripts['en'] to each id in turn: the file named for English is never read.
    assert set(zip(ok["edx_video_id"], ok["language"])) == {p for p in named if p[1] == "es"}
    english = df[df["language"] == "en"]
    assert set(english["status"]) == {"not_served"} and english["live_key"].notna().all()
    assert (df["difference"] == "").all()
    df = etl.handoff(cfg, DEMO_ID, english_from_transcripts=True)
    ok = df[df["status"] == "ok"]
    assert set(zip(ok["edx_video_id"], ok["language"])) == named
    assert set(ok.loc[ok["language"] == "en", "difference"]) == {"english_from_transcripts"}
    assert set(ok.loc[ok["language"] == "es", "difference"]) == {""}
    assert set(ok["branch"]) == {"published", "draft"} and (ok["file_format"] == "srt").all()
    commit = etl.committed(cfg, DEMO_ID)
    assert all(k.startswith(commit["transcripts_prefix"]) for k in ok["live_key"])
    assert set(df["status"]) <= set(STATUSES)
    stored, meta = read(cfg, parse_course_id(DEMO_ID))
    assert len(stored) == len(df) and meta["epoch"] == str(commit["epoch"])
    assert meta["manifest_key"] == commit["manifest_key"] and meta["english_from_transcripts"] == "True"


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


def test_each_language_is_resolved_in_the_lms_order_with_studio_cleaned_names(cfg, contentstore):
    course = "course-v1:Hand+Off+2026"
    register_course(contentstore, course)
    save_upload(contentstore, course, "Lecture 1 (fr).srt", srt(cues(3, "fr")))  # kept as Lecture_1__fr_.srt
    save_upload(contentstore, course, "sjson-named-srt-de.srt", sjson(cues(2)))  # the bytes say SJSON
    save_upload(contentstore, course, "broken-pt.srt", b"\x00\x01 not a transcript")
    save_upload(contentstore, course, "subs_legacy1.srt.sjson", sjson(cues(2)))
    save_upload(contentstore, course, "es_subs_legacy1.srt.sjson", sjson(cues(2, "es")))
    save_upload(contentstore, course, "named-es.srt", srt(cues(2, "es")))
    save_upload(contentstore, course, "named-en.srt", srt(cues(2, "en")))
    save_upload(contentstore, course, "subs_3_yD_cEKoCk.srt.sjson", sjson(cues(1)))  # the default youtube id's
    db = contentstore
    index = db["modulestore.active_versions"].find_one({"org": "Hand"})
    blocks = [
        {"block_type": "video", "block_id": "a", "fields": {"edx_video_id": "vid-a", "transcripts": {
            "fr": "Lecture 1 (fr).srt", "de": "sjson-named-srt-de.srt", "pt": "broken-pt.srt", "it": "gone-it.srt"}}},
        # English from sub's SJSON, never the file named for it; Spanish from its file, tried first (id None).
        {"block_type": "video", "block_id": "b", "fields": {"edx_video_id": "vid-b", "sub": "legacy1", "transcripts": {
            "es": "named-es.srt", "en": "named-en.srt"}}},
        {"block_type": "video", "block_id": "c", "fields": {"sub": "legacy1"}},
        # No sub: English is the default youtube id's SJSON, never transcripts['en'].
        {"block_type": "video", "block_id": "d", "fields": {"edx_video_id": "vid-d", "transcripts": {
            "en": "named-en.srt"}}},
    ]
    for branch in ("published", "draft"):
        db["modulestore.structures"].insert_one({"_id": index["versions"][f"{branch}-branch"], "blocks": blocks})
    etl.migrate(cfg, [course])
    df = etl.handoff(cfg, course).query("branch == 'published'").set_index(["usage_key", "language"])
    a, b, c, d = (f"block-v1:Hand+Off+2026+type@video+block@{x}" for x in "abcd")
    assert df.loc[(a, "fr"), "status"] == "ok" and df.loc[(a, "fr"), "asset_name"] == "Lecture_1__fr_.srt"
    assert df.loc[(a, "de"), "status"] == "format_differs" and df.loc[(a, "de"), "file_format"] == "sjson"
    assert df.loc[(a, "pt"), "status"] == "parse_error"
    assert df.loc[(a, "it"), "status"] == "asset_missing"
    assert (a, "en") not in df.index  # English, never named, nothing behind it
    # English is sub's SJSON; but the YouTube player asks with videoId, the default youtube id, whose own SJSON
    # the contentstore holds and serves first: edx-val would answer that request with sub's.
    assert df.loc[(b, "en"), "asset_name"] == "subs_legacy1.srt.sjson"
    assert df.loc[(b, "en"), "status"] == "lms_differs"
    assert "the player's en transcript (YouTube, videoId 3_yD_cEKoCk)" in df.loc[(b, "en"), "detail"]
    assert df.loc[(b, "es"), "asset_name"] == "named-es.srt" and df.loc[(b, "es"), "status"] == "ok"
    assert df.loc[(c, "en"), "status"] == "no_edx_video_id"
    assert df.loc[(d, "en"), "asset_name"] == "subs_3_yD_cEKoCk.srt.sjson" and df.loc[(d, "en"), "status"] == "ok"
    assert Layout(cfg, parse_course_id(course)).handoff.endswith(".parquet")
    parsed = etl.handoff(cfg, course, as_parsed=True).query("branch == 'published'").set_index(
        ["usage_key", "language"])
    assert parsed.loc[(a, "de"), "status"] == "ok" and parsed.loc[(a, "de"), "difference"] == "as_parsed"


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
