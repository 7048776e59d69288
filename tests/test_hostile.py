"""Hostile and broken input: a clear one-line error and nothing written, or a byte-exact, flagged migration."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

import etl
from etl.demo.sample import cues, save_asset, sjson
from tests.helpers import listing, live_key, live_prefix, objects

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COURSE = "course-v1:Hostile+Input+2026"


@pytest.mark.parametrize("bad", ["../../etc", "course-v1:a++b", "a/b/c/d", "course-v1:a+b+c\x1b[31m",
                                 "x/y/" + "z" * 5000, "", "course-v1:..+..+.."])
@pytest.mark.parametrize("verb", ["extract", "promote", "rollback", "verify", "diff"])
def test_malformed_course_ids_are_refused_and_nothing_is_written(cfg, bad, verb):
    with pytest.raises(etl.InvalidId) as err:
        getattr(etl, verb)(cfg, bad)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400
    assert listing(cfg) == {}


@pytest.mark.parametrize("name, what", [("bad\x07bell.srt", "control characters"),
                                        ("tab\there.srt", "control characters"),
                                        ("é" * 600 + ".srt", "1024")])
def test_asset_names_that_cannot_be_keys_are_refused_naming_them_with_nothing_written(cfg, contentstore, name, what):
    save_asset(contentstore, COURSE, "fine.srt", b"1\n00:00:01,000 --> 00:00:02,000\nok\n")
    save_asset(contentstore, COURSE, name, b"1\n00:00:01,000 --> 00:00:02,000\nok\n")
    with pytest.raises(etl.InvalidId, match=what) as err:
        etl.extract(cfg, COURSE)
    assert COURSE in str(err.value) and "\n" not in str(err.value)
    assert listing(cfg) == {}


def test_names_with_slashes_and_dot_dot_migrate_under_the_quoting_rule(cfg, contentstore):
    names = {"a/b.srt": b"1\n00:00:01,000 --> 00:00:02,000\nslash\n",
             "../escape.srt": b"1\n00:00:01,000 --> 00:00:02,000\nup\n"}
    for name, body in names.items():
        save_asset(contentstore, COURSE, name, body)
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    prefix = live_prefix(cfg, COURSE)
    live = objects(cfg, prefix)
    assert live == {prefix + "a%2Fb.srt": names["a/b.srt"], prefix + "..%2Fescape.srt": names["../escape.srt"]}
    assert all(seg not in (".", "..") for key in listing(cfg) for seg in key.split("/"))


def test_dot_and_dot_dot_names_are_encoded_never_used_as_key_levels(make_cfg, contentstore):
    cfg = make_cfg(transcript_suffixes=(".",))  # the only way such names count as transcripts
    save_asset(contentstore, COURSE, ".", b"one dot")
    save_asset(contentstore, COURSE, "..", b"two dots")
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    prefix = live_prefix(cfg, COURSE)
    assert objects(cfg, prefix) == {prefix + "%2E": b"one dot", prefix + "%2E%2E": b"two dots"}
    assert all(seg not in (".", "..") for key in listing(cfg) for seg in key.split("/"))


def test_binary_and_non_utf8_sjson_like_appledouble_files_migrate_byte_exact_and_flagged(cfg, contentstore):
    apple = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        \x00\x02\x00\x00\x00\t\x00\x00\x002\xff\xfe\x80"
    latin1 = '{"start": [0], "end": [1], "text": ["caf\xe9"]}'.encode("latin-1")
    save_asset(contentstore, COURSE, "._subs_abc.srt.sjson", apple)
    save_asset(contentstore, COURSE, "subs_latin1.srt.sjson", latin1)
    save_asset(contentstore, COURSE, "subs_ok.srt.sjson", sjson(cues(2)))
    result = etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    live = objects(cfg, live_prefix(cfg, COURSE))
    assert live[live_key(cfg, COURSE, "._subs_abc.srt.sjson")] == apple
    assert live[live_key(cfg, COURSE, "subs_latin1.srt.sjson")] == latin1
    assert result.parse_problems == 2
    df = etl.diff(cfg, COURSE).set_index("asset_name")
    assert "not UTF-8" in df.loc["subs_latin1.srt.sjson", "parse_error"]
    assert not df.loc["._subs_abc.srt.sjson", "parse_ok"] and set(df["mark"]) == {"="}


def migrate_big(cfg, megabytes):
    """Migrate a course with one transcript of ``megabytes`` in a child process; return its memory growth in MB."""
    run = subprocess.run([sys.executable, "-m", "tests.children.big", cfg.s3_endpoint_url, cfg.bucket, str(megabytes)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["ok"]
    return (result["rss_after_kb"] - result["rss_before_kb"]) / 1024


def test_a_50_mb_transcript_goes_through_multipart_with_bounded_memory(cfg):
    small, large = migrate_big(cfg, 10), migrate_big(cfg, 50)
    print(f"peak RSS growth: {small:.0f} MB for a 10 MB transcript, {large:.0f} MB for a 50 MB one")
    assert large - small < 20, f"memory grows with the transcript: {small:.0f} MB for 10 MB, {large:.0f} MB for 50 MB"
    line = b"00:00:01,000 --> 00:00:02,000 a long, long lecture transcript line\n"  # as tests/children/big.py builds it
    expected = line * (50 * 1024 * 1024 // len(line))
    body = cfg.s3.get_object(Bucket=cfg.bucket, Key=live_key(cfg, "course-v1:Big+File50+2026", "huge-en.srt"))[
        "Body"].read()
    assert len(body) == len(expected) and hashlib.md5(body).digest() == hashlib.md5(expected).digest()
    assert [k for k in listing(cfg) if k.startswith("staging/")] == []
