import pytest

import etl
from etl.model.layout import Layout, parse_course_id
from etl.demo.sample import cues, save_asset, sjson
from tests.conftest import COURSE, OLD, fill
from tests.helpers import live_key


def promoted(cfg, db, course_id=COURSE):
    fill(db, course_id)
    etl.extract(cfg, course_id)
    etl.promote(cfg, course_id)
    return Layout(cfg, parse_course_id(course_id))


@pytest.mark.parametrize("course_id", [COURSE, OLD])
def test_verify_passes_when_everything_agrees(cfg, contentstore, course_id):
    promoted(cfg, contentstore, course_id)
    result = etl.verify(cfg, course_id)
    assert result.ok and result["ok"] and result.problems == []
    assert result.contentstore_count == result.live_count == result.marker_count == result.manifest_rows == 9


def test_verify_fails_before_promote(cfg, contentstore):
    fill(contentstore)
    etl.extract(cfg, COURSE)
    result = etl.verify(cfg, COURSE)
    assert not result.ok and "not committed: run " in result.problems[0] and "fenced the course" in result.problems[0]
    assert "awaiting promote" in result.problems[0] and "marker None" not in str(result)


def test_verify_catches_a_missing_or_altered_live_object(cfg, contentstore):
    promoted(cfg, contentstore)
    cfg.s3.delete_object(Bucket=cfg.bucket, Key=live_key(cfg, COURSE, "subs_abc.srt.sjson"))
    cfg.s3.put_object(Bucket=cfg.bucket, Key=live_key(cfg, COURSE, "broken-en.srt"), Body=b"altered")
    result = etl.verify(cfg, COURSE)
    assert not result.ok
    text = " ".join(result.problems)
    assert "missing from S3: 'subs_abc.srt.sjson'" in text and "checksum differs in S3: 'broken-en.srt'" in text
    assert "counts differ" in text


def test_verify_catches_contentstore_edits_after_promote(cfg, contentstore):
    promoted(cfg, contentstore)
    save_asset(contentstore, COURSE, "subs_abc.srt.sjson", sjson(cues(8)))
    result = etl.verify(cfg, COURSE)
    assert not result.ok and "edited in the contentstore since promote" in " ".join(result.problems)
