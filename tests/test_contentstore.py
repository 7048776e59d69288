import hashlib

import pytest

import etl
from etl.source import contentstore as cs
from etl.model.layout import parse_course_id
from etl.demo.sample import save_asset, sjson, srt, cues

NEW = "course-v1:edX+DemoX+2024_T1"
NEW_OTHER_RUN = "course-v1:edX+DemoX+2025_T1"
OLD = "edX/DemoX/Demo_Course"


def names(cfg, course_id):
    return [a.name for a in cs.find_transcripts(cfg, parse_course_id(course_id))]


def test_selects_transcripts_of_each_key_style_without_mixing_runs_or_twins(cfg, contentstore):
    save_asset(contentstore, NEW, "subs_a.srt.sjson", sjson(cues(2)))
    save_asset(contentstore, NEW, "vid-en.SRT", srt(cues(2)))  # suffixes are case-insensitive
    save_asset(contentstore, NEW, "notes.pdf", b"%PDF")
    save_asset(contentstore, NEW, "subs_a.srt.sjson", b"jpeg", category="thumbnail")
    save_asset(contentstore, NEW_OTHER_RUN, "subs_other_run.srt.sjson", sjson(cues(2)))
    save_asset(contentstore, OLD, "subs_old.srt.sjson", sjson(cues(2)))
    save_asset(contentstore, "edX/Other/Demo_Course", "subs_other_course.srt.sjson", sjson(cues(2)))
    assert names(cfg, NEW) == ["subs_a.srt.sjson", "vid-en.SRT"]
    assert names(cfg, NEW_OTHER_RUN) == ["subs_other_run.srt.sjson"]
    assert names(cfg, OLD) == ["subs_old.srt.sjson"]
    # Old-style assets carry no run: every run of an old-style course shares them.
    assert names(cfg, "edX/DemoX/Another_Run") == ["subs_old.srt.sjson"]


def test_asset_ids_follow_each_key_style(cfg, contentstore):
    save_asset(contentstore, NEW, "subs_a.srt.sjson", b"{}")
    save_asset(contentstore, OLD, "subs_a.srt.sjson", b"{}")
    (new,) = contentstore_find(cfg, NEW)
    (old,) = contentstore_find(cfg, OLD)
    assert new.asset_id == "asset-v1:edX+DemoX+2024_T1+type@asset+block@subs_a.srt.sjson"
    assert old.asset_id == "/c4x/edX/DemoX/asset/subs_a.srt.sjson"


def contentstore_find(cfg, course_id):
    return cs.find_transcripts(cfg, parse_course_id(course_id))


def test_suffix_list_is_configurable(make_cfg, contentstore):
    save_asset(contentstore, NEW, "a.srt", srt(cues(1)))
    save_asset(contentstore, NEW, "b.vtt", b"WEBVTT")
    assert names(make_cfg(transcript_suffixes=(".vtt",)), NEW) == ["b.vtt"]


@pytest.mark.parametrize("course_id", [NEW, OLD])
def test_reads_multi_chunk_and_empty_transcripts_byte_exact(cfg, contentstore, course_id):
    big = sjson(cues(14000))
    assert len(big) > 2 * 261120
    save_asset(contentstore, course_id, "subs_big.srt.sjson", big)
    save_asset(contentstore, course_id, "subs_empty.srt.sjson", b"")
    save_asset(contentstore, course_id, "small chunks.srt", srt(cues(30)), chunk_size=100, legacy_md5=True)
    assets = contentstore_find(cfg, course_id)
    got = {a.name: (data, digest) for a, data, digest in cs.read_small(cfg, parse_course_id(course_id), assets)}
    assert got["subs_big.srt.sjson"] == (big, hashlib.md5(big).hexdigest())
    assert got["subs_empty.srt.sjson"][0] == b""
    assert got["small chunks.srt"][0] == srt(cues(30))


def corrupt(db, course_id, name, how):
    save_asset(db, course_id, name, b"x" * 250, chunk_size=100, legacy_md5=True)
    files_id = db["fs.files"].find_one({"filename": {"$regex": name.replace(".", r"\.") + "$"}})["_id"]
    chunk = {"files_id": files_id, "n": 1}
    if how == "missing chunk":
        db["fs.chunks"].delete_one(chunk)
    elif how == "truncated chunk":
        db["fs.chunks"].update_one(chunk, {"$set": {"data": b"x" * 10}})
    elif how == "wrong length":
        db["fs.files"].update_one({"_id": files_id}, {"$set": {"length": 260}})
    elif how == "wrong md5":
        db["fs.chunks"].update_one(chunk, {"$set": {"data": b"y" * 100}})


@pytest.mark.parametrize("how", ["missing chunk", "truncated chunk", "wrong length", "wrong md5"])
@pytest.mark.parametrize("course_id", [NEW, OLD])
def test_corrupt_sources_are_named(cfg, contentstore, how, course_id):
    corrupt(contentstore, course_id, "subs_bad.srt.sjson", how)
    course = parse_course_id(course_id)
    with pytest.raises(etl.CorruptSource, match="subs_bad.srt.sjson") as err:
        list(cs.read_small(cfg, course, contentstore_find(cfg, course_id)))
    assert "\n" not in str(err.value) and course_id in str(err.value)
