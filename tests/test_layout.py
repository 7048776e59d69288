from urllib.parse import unquote

import pytest

import etl
from etl.model.layout import Layout, parse_course_id, quote_segment


def test_both_course_id_styles_parse():
    new = parse_course_id("course-v1:edX+DemoX+2024_T1")
    old = parse_course_id("edX/DemoX/Demo_Course")
    assert (new.org, new.course, new.run, new.deprecated) == ("edX", "DemoX", "2024_T1", False)
    assert (old.org, old.course, old.run, old.deprecated) == ("edX", "DemoX", "Demo_Course", True)
    assert str(new) == "course-v1:edX+DemoX+2024_T1" and str(old) == "edX/DemoX/Demo_Course"


@pytest.mark.parametrize("bad", [
    "", "course-v1:edX+DemoX", "course-v1:edX++2024", "edX/DemoX", "edX//Demo", "../../etc/passwd",
    "edX/../Demo", "edX/DemoX/..", "course-v1:edX+Demo X+1", "edX/Demo\nX/1", "edX/Demo\x00X/1",
    "edX/DemoX/" + "r" * 300, "course-v1:a+b+c+d",
])
def test_malformed_course_ids_are_refused_with_one_line(bad):
    with pytest.raises(etl.InvalidId) as err:
        parse_course_id(bad)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400


@pytest.mark.parametrize("bad", ["course-v1:edX+DemoX+2024\n", "edX/DemoX/Demo_Course\n", "a~b/c/d", "a:b/c/d",
                                 "course-v1:a%b+c+d", "course-v1:a+b+c+d"])
def test_ids_opaque_keys_refuses_are_refused(bad):
    with pytest.raises(etl.InvalidId, match="not a valid course key"):
        parse_course_id(bad)


@pytest.mark.parametrize("other, reason", [("ccx-v1:edX+DemoX+2024+ccx@3", "CCX course"),
                                           ("library-v1:edX+Lib", "content library"), ("lib:edX:lib1", "content library")])
def test_ccx_and_library_keys_are_refused_with_their_own_reason(other, reason):
    with pytest.raises(etl.InvalidId, match=reason):
        parse_course_id(other)


def test_what_opaque_keys_accepts_is_accepted_and_a_branch_or_version_is_dropped():
    assert str(parse_course_id("edX%20Org/Demo%2FX/Run")) == "edX%20Org/Demo%2FX/Run"  # '%' as Open edX allows
    assert str(parse_course_id("course-v1:edX+DemoX+2024+branch@draft-branch")) == "course-v1:edX+DemoX+2024"
    assert str(parse_course_id("course-v1:edX+DemoX+2024+version@5f2a1b2c3d4e5f6a7b8c9d0e")) == "course-v1:edX+DemoX+2024"
    assert str(parse_course_id("edX/DemoX/Demo_Course").locator()) == "edX/DemoX/Demo_Course"


def test_old_style_id_stays_one_key_level_and_reverses(cfg):
    layout = Layout(cfg, parse_course_id("edX/DemoX/Demo_Course"))
    assert layout.live_root == "video-transcripts/edX%2FDemoX%2FDemo_Course/"
    assert layout.marker == "video-transcripts/edX%2FDemoX%2FDemo_Course/_COMMIT.json"
    assert layout.legacy_marker == "video-transcripts/edX%2FDemoX%2FDemo_Course/_MIGRATED.json"
    assert unquote(layout.live_root.split("/")[1]) == "edX/DemoX/Demo_Course"


def test_new_style_keys_keep_colon_and_plus(cfg):
    layout = Layout(cfg, parse_course_id("course-v1:edX+DemoX+2024"))
    assert layout.staged_key(3, "a b.srt") == "staging/course-v1:edX+DemoX+2024/e3/transcripts/a%20b.srt"
    assert layout.staging_manifest(3) == "staging/course-v1:edX+DemoX+2024/e3/manifest.parquet"
    assert layout.live_key(12, "subs_x.srt.sjson") == \
        "video-transcripts/course-v1:edX+DemoX+2024/e12/transcripts/subs_x.srt.sjson"
    assert layout.live_manifest(12) == "video-transcripts/course-v1:edX+DemoX+2024/e12/manifest.parquet"
    assert layout.live_manifest(0) == "video-transcripts/course-v1:edX+DemoX+2024/_manifest.parquet"
    assert layout.live_key(0, "a.srt") == "video-transcripts/course-v1:edX+DemoX+2024/transcripts/a.srt"


def test_every_key_of_a_course_belongs_to_one_epoch(cfg):
    layout = Layout(cfg, parse_course_id("edX/DemoX/Demo_Course"))
    assert layout.epoch_of(layout.staged_key(7, "e3")) == 7 and layout.epoch_of(layout.live_key(12, "x")) == 12
    assert layout.epoch_of(layout.marker) is None
    legacy = [layout.legacy_marker, layout.legacy_manifest, layout.live_key(0, "e5"),
              layout.staging_root + "20261127T120000Z-0123abcd/manifest.parquet", layout.live_root + "e0/x"]
    assert [layout.epoch_of(k) for k in legacy] == [0] * 5
    with pytest.raises(ValueError):
        layout.epoch_of("video-transcripts/edX%2FDemoX%2FOther/e1/x")
    with pytest.raises(ValueError):
        layout.staged_key(0, "x")


@pytest.mark.parametrize("name", ["a/b.srt", "../up.srt", "ünï cødé – 字幕.srt", "50%.srt", "a+b@c:d.srt"])
def test_asset_segments_are_one_level_and_reversible(name):
    seg = quote_segment(name)
    assert "/" not in seg and unquote(seg) == name


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_segments_are_encoded_never_kept(name):
    seg = quote_segment(name)
    assert seg not in (".", "..") and set(seg) <= set("%2E") and unquote(seg) == name


def test_asset_names_with_control_characters_or_too_long_are_refused(cfg):
    layout = Layout(cfg, parse_course_id("course-v1:edX+DemoX+1"))
    run = 1
    with pytest.raises(etl.InvalidId, match="control characters"):
        layout.asset_keys(run, "bad\x07name.srt")
    with pytest.raises(etl.InvalidId, match="1024"):
        layout.asset_keys(run, "é" * 400 + ".srt")
    assert layout.asset_keys(run, "ok.srt")[1].endswith("/transcripts/ok.srt")


@pytest.mark.parametrize("prefixes", [
    dict(staging_prefix="/abs"), dict(live_prefix="x/../y"), dict(state_prefix=""),
    dict(staging_prefix="same", live_prefix="same"), dict(live_prefix="a", staging_prefix="a/b"),
])
def test_bad_or_overlapping_prefixes_are_refused(prefixes):
    with pytest.raises(etl.UsageError):
        etl.Config(bucket="some-bucket", **prefixes)


def test_config_repr_never_shows_the_contentstore_uri():
    class Db:
        def __repr__(self):
            return "Database(MongoClient('mongodb://admin:hunter2@db'))"

    assert "hunter2" not in repr(etl.Config(bucket="some-bucket", contentstore=Db()))


def test_the_tool_s_client_reads_s3_timestamps_as_botocore_does(cfg):
    import boto3

    cfg.s3.put_object(Bucket=cfg.bucket, Key="t/one", Body=b"x")
    plain = boto3.client("s3", endpoint_url=cfg.s3_endpoint_url)
    listed = cfg.s3.list_objects_v2(Bucket=cfg.bucket, Prefix="t/")["Contents"][0]["LastModified"]
    headed = cfg.s3.head_object(Bucket=cfg.bucket, Key="t/one")["LastModified"]  # an HTTP date, not ISO 8601
    assert listed == plain.list_objects_v2(Bucket=cfg.bucket, Prefix="t/")["Contents"][0]["LastModified"]
    assert headed == plain.head_object(Bucket=cfg.bucket, Key="t/one")["LastModified"]
    assert listed.tzinfo is not None and headed.tzinfo is not None
