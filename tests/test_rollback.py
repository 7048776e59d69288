import pytest

import etl
from etl.protocol import marker
from etl.protocol import state as st
from etl.model.layout import Layout, parse_course_id
from tests.helpers import listing, objects
from tests.conftest import COURSE, OLD, fill


@pytest.mark.parametrize("course_id", [COURSE, OLD])
def test_rollback_of_a_staged_course_deletes_its_staging_run(cfg, contentstore, course_id):
    fill(contentstore, course_id)
    etl.extract(cfg, course_id)
    layout = Layout(cfg, parse_course_id(course_id))
    assert objects(cfg, layout.staging_root)
    result = etl.rollback(cfg, course_id)
    assert objects(cfg, layout.staging_root) == {} and not result.was_promoted
    assert result.deleted == 10  # nine transcripts and the manifest
    assert st.read(cfg, parse_course_id(course_id))[0]["state"] == "rolled_back"


def test_promoted_course_needs_force_then_marker_and_live_objects_go(cfg, contentstore):
    fill(contentstore)
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    layout = Layout(cfg, parse_course_id(COURSE))
    live_before = objects(cfg, layout.live_root)
    with pytest.raises(etl.Refused, match="--force") as err:
        etl.rollback(cfg, COURSE)
    assert "\n" not in str(err.value)
    assert objects(cfg, layout.live_root) == live_before
    result = etl.rollback(cfg, COURSE, force=True)
    assert result.was_promoted and result.deleted == 10  # manifest, nine transcripts; the commit key is replaced
    assert set(objects(cfg, layout.live_root)) == {layout.marker}
    assert marker.read(cfg, parse_course_id(COURSE)).holds == "released"
    assert etl.status(cfg, COURSE)["state"].tolist() == ["rolled_back"]
    assert not etl.verify(cfg, COURSE).ok
    etl.extract(cfg, COURSE)  # and the course can be migrated again
    etl.promote(cfg, COURSE)
    assert etl.verify(cfg, COURSE).ok


def test_rollback_never_deletes_objects_the_tool_did_not_write(cfg, contentstore):
    fill(contentstore)
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    layout = Layout(cfg, parse_course_id(COURSE))
    foreign = {layout.live_transcripts(2) + "hand-made.srt": b"operator's file",
               layout.staging_root + "notes.txt": b"keep me",
               layout.staging_epoch(1) + "transcripts/extra.srt": b"not ours either"}
    for key, body in foreign.items():
        cfg.s3.put_object(Bucket=cfg.bucket, Key=key, Body=body)
    result = etl.rollback(cfg, COURSE, force=True)
    assert sorted(result.kept_foreign) == sorted(foreign)
    left = objects(cfg, layout.live_root) | objects(cfg, layout.staging_root)
    assert left.pop(layout.marker) and left == foreign  # the commit key holds the rollback's release


def test_rollback_of_a_course_never_migrated_writes_nothing(cfg, contentstore):
    fill(contentstore)  # known to the contentstore, never migrated
    result = etl.rollback(cfg, COURSE)
    assert result.deleted == 0 and result.run_id is None
    assert listing(cfg) == {}  # no status record, no event, no fence: nothing for a course the tool never touched
    with pytest.raises(etl.UsageError, match="did you mean"):  # a typo is refused, not "nothing to roll back"
        etl.rollback(cfg, COURSE.replace("DemoX", "DemX"), force=True)
