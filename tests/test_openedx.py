"""Open edX's plugin: real edx-val on Django and sqlite, its storage django-storages' S3 on the suite's moto.

edx-val's storage is a bucket of its own, as on a real site: registering uploads
a copy through edx-val, which then owns it. scripts/check_platform_pins.sh runs
this file again with edx-val 3.2.0 beside openedx-platform's pins.
"""

import hashlib
import os

import pytest

pytest.importorskip("edxval")
pytest.importorskip("storages")

import etl  # noqa: E402
from etl.demo.sample import cues, register_course, save_upload, srt  # noqa: E402
from etl.model.layout import parse_course_id  # noqa: E402
from etl.protocol import phase2, receipts  # noqa: E402
from tests.edx import BUCKET, DEMO, DEMO_ID, VAL_BUCKET, demo, manage, s3_storage, served, tool_objects, val_objects  # noqa: E402,E501
from tests.olx import load_videos  # noqa: E402
from tests.test_real_exports import DATA, import_static  # noqa: E402

OLD_ID = "edX/DemoX/Demo_Course"


def test_registering_uploads_a_copy_edx_val_owns_and_serves_every_pair_byte_for_byte(val, contentstore,
                                                                                        monkeypatch):
    from edxval.models import VideoTranscript

    saved, pairs = demo(val, contentstore)
    before = tool_objects(val)
    code, out, _ = manage(val, monkeypatch, DEMO_ID)
    assert code == 0 and "would register" in out and "dry run" in out
    assert VideoTranscript.objects.count() == 0 and val_objects(val) == {}
    code, out, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert code == 0, err
    assert VideoTranscript.objects.count() == len(pairs) == 6
    for video_id, language, name in pairs:
        assert served(video_id, language) == saved[name]
    copies = val_objects(val)  # edx-val's own copies, named as Studio's uploads are
    assert len(copies) == 6 and all(k.startswith("video-transcripts/") and len(k) == 18 + 32 + 4 for k in copies)
    assert sorted(copies.values()) == sorted(saved[name] for _, _, name in pairs)
    assert tool_objects(val) == before  # not one of the tool's objects changed
    receipt = receipts.live(val, parse_course_id(DEMO_ID))[0][1]
    assert {r["storage_name"] for r in receipt["registered"]} == set(copies)
    assert phase2.read(val, parse_course_id(DEMO_ID))["registered"]["rows"] == 6
    code, out, _ = manage(val, monkeypatch, DEMO_ID, "--commit")  # again: every pair is edx-val's already
    assert code == 0 and out.count("val_row_same") == 6 and len(val_objects(val)) == 6


def test_by_default_only_what_the_lms_serves_is_registered_and_the_rest_says_why(val, contentstore, monkeypatch):
    from edxval.models import VideoTranscript

    demo(val, contentstore, english=False)
    code, out, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert code == 0, err
    assert [(t.video.edx_video_id, t.language_code) for t in VideoTranscript.objects.all()] == [
        ("48c991fb-083c-45e1-adad-930d2b11b11e", "es")]
    assert out.count(": not_served") == 5 and f"{DEMO_ID}: 1 registered" in out


def test_studio_deleting_a_row_leaves_the_tools_epoch_and_every_other_row(val, contentstore, monkeypatch):
    from edxval import api

    saved, pairs = demo(val, contentstore)
    assert manage(val, monkeypatch, DEMO_ID, "--commit")[0] == 0
    code, out, _ = manage(val, monkeypatch, DEMO_ID, command="transcript_etl_check")
    assert code == 0 and f"{DEMO_ID}: 6 of 6 rows serve the registered bytes" in out
    (gone, language, _), *others = sorted(pairs)
    api.delete_video_transcript(gone, language)  # Studio's delete button
    assert etl.verify(val, DEMO_ID).ok
    for video_id, lang, name in others:
        assert served(video_id, lang) == saved[name]
    code, out, _ = manage(val, monkeypatch, DEMO_ID, command="transcript_etl_check")
    assert code == 5 and f"FAIL {DEMO_ID} {gone} {language}: no row" in out and "5 of 6" in out
    assert "1 rows fail" in phase2.describe(parse_course_id(DEMO_ID), phase2.read(val, parse_course_id(DEMO_ID)),
                                            1)


def test_the_check_fails_once_a_copy_is_gone_from_edx_vals_storage(val, contentstore, monkeypatch):
    demo(val, contentstore)
    assert manage(val, monkeypatch, DEMO_ID, "--commit")[0] == 0
    name = sorted(val_objects(val))[0]
    val.s3.delete_object(Bucket=VAL_BUCKET, Key=name)
    code, out, err = manage(val, monkeypatch, DEMO_ID, command="transcript_etl_check")
    assert code == 5 and f"edx-val cannot read its copy {name}" in out and "see FAIL above" in err


def test_rollback_force_after_register_leaves_every_row_readable_and_undo_removes_rows_and_copies(
        val, contentstore, monkeypatch):
    from edxval.models import VideoTranscript

    saved, pairs = demo(val, contentstore)
    assert manage(val, monkeypatch, DEMO_ID, "--commit")[0] == 0
    assert etl.rollback(val, DEMO_ID, force=True).was_promoted  # nothing refuses it any more
    for video_id, language, name in pairs:
        assert served(video_id, language) == saved[name]
    code, out, _ = manage(val, monkeypatch, DEMO_ID, "--undo")
    assert code == 0 and out.count("would remove") == 6 and VideoTranscript.objects.count() == 6
    code, out, err = manage(val, monkeypatch, DEMO_ID, "--undo", "--commit")
    assert code == 0, err
    assert VideoTranscript.objects.count() == 0 and val_objects(val) == {}
    assert receipts.live(val, parse_course_id(DEMO_ID)) == []


def test_a_storage_edx_val_cannot_write_leaves_no_row_no_video_and_no_receipt(val, contentstore, monkeypatch):
    from edxval.models import Video, VideoTranscript

    field = VideoTranscript._meta.get_field("transcript")
    original = field.storage
    demo(val, contentstore, skip={"48c991fb-083c-45e1-adad-930d2b11b11e"})
    field.storage = s3_storage(val.s3_endpoint_url, "no-such-bucket-for-edx-val")
    try:
        code, _, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    finally:
        field.storage = original
    assert code == 4 and "edx-val could not save its copy" in err and "NoSuchBucket" in err
    assert VideoTranscript.objects.count() == 0 and not Video.objects.filter(
        edx_video_id="48c991fb-083c-45e1-adad-930d2b11b11e").exists()
    assert receipts.live(val, parse_course_id(DEMO_ID)) == [] and val_objects(val) == {}


def test_a_row_edx_val_cannot_write_after_its_copy_is_saved_leaves_no_copy(val, contentstore, monkeypatch):
    """edx-val saves the copy, then the row: a database another writer holds fails the row, not the copy."""
    import sqlite3

    from django.conf import settings
    from edxval.models import VideoTranscript

    demo(val, contentstore, skip={"48c991fb-083c-45e1-adad-930d2b11b11e"})
    other = sqlite3.connect(settings.DATABASES["default"]["NAME"], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another register's open transaction, as the pairwise sweep freezes one
    try:
        code, _, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert code == 4 and "edx-val could not save its copy" in err and "database is locked" in err, err
    assert VideoTranscript.objects.count() == 0 and val_objects(val) == {}
    assert receipts.live(val, parse_course_id(DEMO_ID)) == []


def test_bytes_edx_val_serves_differently_undo_the_course_and_delete_its_copies(val, contentstore, monkeypatch):
    from django.core.files.base import ContentFile
    from edxval.models import VideoTranscript
    from storages.backends.s3 import S3Storage

    class Rewriting(S3Storage):  # a storage that changes what it is given, as a misconfigured one might
        def _save(self, name, content):
            return super()._save(name, ContentFile(content.read().replace(b"-->", b"->")))

    field = VideoTranscript._meta.get_field("transcript")
    original = field.storage
    demo(val, contentstore)
    field.storage = Rewriting(bucket_name=VAL_BUCKET, endpoint_url=val.s3_endpoint_url, access_key="testing",
                              secret_key="testing", region_name="us-east-1", addressing_style="path")
    try:
        code, _, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    finally:
        field.storage = original
    assert code == 3 and "edx-val serves other bytes than the committed object" in err
    assert VideoTranscript.objects.count() == 0 and val_objects(val) == {}
    assert receipts.live(val, parse_course_id(DEMO_ID)) == []


def test_a_video_edx_val_lacks_is_created_external_and_its_transcript_served(val, contentstore, monkeypatch):
    from edxval.models import Video

    missing = "48c991fb-083c-45e1-adad-930d2b11b11e"
    saved, pairs = demo(val, contentstore, skip={missing})
    code, out, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert code == 0, err
    assert out.count("(creating its external Video)") == 2  # its en and es rows; one Video
    video = Video.objects.get(edx_video_id=missing)
    assert video.status == "external" and video.courses.count() == 0
    for video_id, language, name in pairs:
        assert served(video_id, language) == saved[name]


def test_an_old_style_course_is_refused_with_the_way_to_move_it(val, contentstore, monkeypatch):
    from edxval.models import VideoTranscript

    import_static(contentstore, "edx-demox-2015-export", OLD_ID)
    register_course(contentstore, OLD_ID)
    load_videos(contentstore, os.path.join(DATA, "edx-demox-2015-export"), OLD_ID)
    etl.migrate(val, [OLD_ID])
    df = etl.handoff(val, OLD_ID)  # the hand-off still reports it
    assert set(df["status"]) == {"no_edx_video_id"}
    code, _, err = manage(val, monkeypatch, OLD_ID, "--commit")
    assert code == 2 and "old-style id" in err and "import it as a course-v1 course" in err
    assert VideoTranscript.objects.count() == 0
    assert phase2.describe(parse_course_id(OLD_ID), {}, 1).startswith("nothing to register: old-style")


def test_an_existing_row_is_reported_same_or_differs_naming_the_course_that_shares_the_video(
        val, contentstore, monkeypatch):
    from django.core.files.base import ContentFile
    from edxval.models import CourseVideo, Video, VideoTranscript

    saved, pairs = demo(val, contentstore)
    (same_id, same_lang, same_name), (other_id, other_lang, _), *_ = sorted(pairs)
    for video_id, language, data in ((same_id, same_lang, saved[same_name]), (other_id, other_lang, b"mine")):
        row = VideoTranscript(video=Video.objects.get(edx_video_id=video_id), language_code=language.upper(),
                              file_format="srt", provider="Custom")
        row.save_transcript(ContentFile(data), "srt")
    CourseVideo.objects.create(video=Video.objects.get(edx_video_id=other_id), course_id="course-v1:Other+Run+2027")
    code, out, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert code == 0, err
    assert f"{same_id} {same_lang}" in out.split("val_row_same")[0].splitlines()[-1]
    differs = next(line for line in out.splitlines() if "val_row_differs" in line)
    assert other_id in differs and "shared with course-v1:Other+Run+2027" in differs
    assert served(other_id, other_lang.upper()) == b"mine" and VideoTranscript.objects.count() == 6


def test_draft_only_languages_and_case_twins_are_reported_not_decided(val, contentstore, monkeypatch):
    from edxval.models import Video, VideoTranscript

    course = "course-v1:Case+Twins+2026"
    register_course(contentstore, course)
    for name, text in (("a-pt.srt", "pt"), ("b-pt.srt", "pt"), ("c-fr.srt", "fr"), ("d-de.srt", "de1"),
                       ("e-de.srt", "de2")):
        save_upload(contentstore, course, name, srt(cues(2, text)))
    index = contentstore["modulestore.active_versions"].find_one({"org": "Case"})
    published = [
        {"block_type": "video", "block_id": "a", "fields": {"edx_video_id": "v1", "transcripts": {"pt-BR": "a-pt.srt"}}},
        {"block_type": "video", "block_id": "b", "fields": {"edx_video_id": "v1", "transcripts": {"pt-br": "b-pt.srt"}}},
        {"block_type": "video", "block_id": "d", "fields": {"edx_video_id": "v2", "transcripts": {"de-AT": "d-de.srt"}}},
        {"block_type": "video", "block_id": "e", "fields": {"edx_video_id": "v2", "transcripts": {"de-at": "e-de.srt"}}},
    ]
    draft = published + [{"block_type": "video", "block_id": "c", "fields": {"edx_video_id": "v3", "transcripts": {
        "fr": "c-fr.srt"}}}]
    contentstore["modulestore.structures"].insert_one({"_id": index["versions"]["published-branch"],
                                                       "blocks": published})
    contentstore["modulestore.structures"].insert_one({"_id": index["versions"]["draft-branch"], "blocks": draft})
    assert etl.migrate(val, [course]).exit_code == 0
    for video_id in ("v1", "v2", "v3"):
        Video.objects.create(edx_video_id=video_id, client_video_id="x", duration=0, status="external")
    etl.handoff(val, course)
    code, out, err = manage(val, monkeypatch, course, "--commit")
    assert code == 0, err
    # One row for pt-BR and pt-br (MySQL's collation), yet block b would then list pt-BR beside its own pt-br,
    # and default to it: a learner would notice, so neither case is registered.
    assert VideoTranscript.objects.count() == 0
    assert "v1 pt-br" in out and "same_row_as (pt-BR)" in out
    assert "v1 pt-BR block-v1:Case+Twins+2026+type@video+block@a (published): lms_differs (block-v1:Case+Twins+2026" \
           "+type@video+block@b: edx-val would answer differently" in out
    assert out.count("languages_differ_by_case (de-AT, de-at, with different bytes)") == 2
    assert "v3 fr" in out and ": draft_only" in out


def test_an_author_upload_between_plan_and_commit_is_never_overwritten_nor_undone(val, contentstore, monkeypatch):
    from django.core.files.base import ContentFile
    from edxval.models import Video, VideoTranscript

    from etl.openedx import register

    saved, pairs = demo(val, contentstore)
    result = register.plan(val, DEMO_ID)
    video_id, language, _ = sorted(pairs)[0]
    author = VideoTranscript(video=Video.objects.get(edx_video_id=video_id), language_code=language,
                             file_format="srt", provider="Custom")
    author.save_transcript(ContentFile(b"1\n00:00:00,000 --> 00:00:01,000\nauthor\n"), "srt")
    register.commit(val, result)
    assert len(result.act) == 5 and any("val_row_differs" in str(skip) for skip in result.skip)
    author.refresh_from_db()
    assert served(video_id, language).endswith(b"author\n")
    code, _, err = manage(val, monkeypatch, DEMO_ID, "--undo", "--commit")
    assert code == 0, err
    assert list(VideoTranscript.objects.values_list("pk", flat=True)) == [author.pk]
    assert list(val_objects(val)) == [author.transcript.name]


def test_a_rollback_and_new_epoch_between_plan_and_commit_registers_nothing(val, contentstore, monkeypatch):
    from edxval.models import VideoTranscript

    from etl.openedx import register

    demo(val, contentstore)
    result = register.plan(val, DEMO_ID)
    etl.rollback(val, DEMO_ID, force=True)
    etl.migrate(val, [DEMO_ID])
    with pytest.raises(etl.Refused, match="its commit changed since the plan"):
        register.commit(val, result)
    assert VideoTranscript.objects.count() == 0 and val_objects(val) == {}


def test_a_failure_just_before_the_database_commit_leaves_no_row_no_copy_and_no_live_receipt(val, contentstore):
    from edxval.models import VideoTranscript

    from etl.openedx import register

    demo(val, contentstore)
    result = register.plan(val, DEMO_ID)
    seen = []

    def fail(point):
        seen.append(point)
        if point == "before database commit":
            assert len(val_objects(val)) == 6 and receipts.live(val, parse_course_id(DEMO_ID))
            raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        register.commit(val, result, hook=fail)
    assert seen == ["uploaded", "before database commit"]
    assert VideoTranscript.objects.count() == 0 and val_objects(val) == {}
    assert receipts.live(val, parse_course_id(DEMO_ID)) == []


def test_an_undo_whose_database_commit_fails_keeps_its_receipts_live_and_every_copy(val, contentstore,
                                                                                     monkeypatch):
    from django.db.models.signals import pre_delete
    from edxval.models import VideoTranscript

    demo(val, contentstore)
    assert manage(val, monkeypatch, DEMO_ID, "--commit")[0] == 0
    copies = val_objects(val)

    def refuse(sender, instance, **kwargs):
        raise RuntimeError("lock wait timeout")

    pre_delete.connect(refuse, sender=VideoTranscript)
    try:
        with pytest.raises(RuntimeError):
            manage(val, monkeypatch, DEMO_ID, "--undo", "--commit")
    finally:
        pre_delete.disconnect(refuse, sender=VideoTranscript)
    assert VideoTranscript.objects.count() == 6 and val_objects(val) == copies
    assert len(receipts.live(val, parse_course_id(DEMO_ID))) == 1
    code, _, err = manage(val, monkeypatch, DEMO_ID, "--undo", "--commit")
    assert code == 0, err
    assert VideoTranscript.objects.count() == 0 and val_objects(val) == {}


def test_a_course_not_committed_a_typo_a_stale_hand_off_and_a_changed_object_are_refused(val, contentstore,
                                                                                         monkeypatch, tmp_path):
    from edxval.models import VideoTranscript

    register_course(contentstore, "course-v1:Not+Yet+2026")
    code, _, err = manage(val, monkeypatch, "course-v1:Not+Yet+2026", "--commit")
    assert code == 3 and "not committed" in err
    demo(val, contentstore)
    listed = tmp_path / "courses.txt"
    listed.write_text(f"# pilot\n{DEMO_ID.replace('DemoX', 'DemX')}\n")
    code, _, err = manage(val, monkeypatch, "--courses", str(listed), "--commit")  # a typo, from a file
    assert code == 2 and "unknown course course-v1:OpenedX+DemX+DemoCourse" in err and f"(did you mean {DEMO_ID}?)" in err
    code, _, err = manage(val, monkeypatch, "--courses", str(tmp_path / "nope.txt"))
    assert code == 2 and "cannot read course list" in err
    etl.rollback(val, DEMO_ID, force=True)
    etl.migrate(val, [DEMO_ID])  # a new epoch: the hand-off names the old one
    code, _, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert code == 3 and "stale" in err and VideoTranscript.objects.count() == 0
    from etl.handoff import read

    etl.handoff(val, DEMO_ID, english_from_transcripts=True)
    rows = read(val, parse_course_id(DEMO_ID))[0]
    key = rows.loc[rows["status"] == "ok", "live_key"].iloc[0]
    val.s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n00:00:00,000 --> 00:00:01,000\nchanged\n")
    code, _, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert code == 3 and "missing or differ" in err and "python -m etl verify" in err
    assert VideoTranscript.objects.count() == 0 and val_objects(val) == {}


def test_the_copy_is_what_the_committed_object_holds_checked_by_md5(val, contentstore, monkeypatch):
    saved, pairs = demo(val, contentstore)
    assert manage(val, monkeypatch, DEMO_ID, "--commit")[0] == 0
    receipt = receipts.live(val, parse_course_id(DEMO_ID))[0][1]
    copies = val_objects(val)
    for row in receipt["registered"]:
        assert hashlib.md5(copies[row["storage_name"]]).hexdigest() == row["md5"]


def test_status_and_report_show_where_each_course_is_in_phase_ii(val, contentstore, monkeypatch, capsys, tmp_path):
    from tests.helpers import run_cli

    import_static(contentstore, "edx-demox-2015-export", OLD_ID)
    register_course(contentstore, OLD_ID)
    load_videos(contentstore, os.path.join(DATA, "edx-demox-2015-export"), OLD_ID)
    demo(val, contentstore)
    etl.migrate(val, [OLD_ID])
    column = lambda: dict(zip(etl.status(val)["course_id"], etl.status(val)["phase2"]))  # noqa: E731
    assert column()[DEMO_ID] == "handed off: 6 to register"
    assert column()[OLD_ID].startswith("nothing to register: old-style id")
    assert manage(val, monkeypatch, DEMO_ID, "--commit")[0] == 0
    assert column()[DEMO_ID] == "registered e1, 6 rows"
    assert manage(val, monkeypatch, DEMO_ID, command="transcript_etl_check")[0] == 0
    assert column()[DEMO_ID].startswith("registered e1, 6 rows; checked 20") and column()[DEMO_ID].endswith(
        ": all serve")
    code, out, err = run_cli(val, contentstore, capsys, tmp_path, "report")
    assert code == 0, err
    assert f"1 ready course(s) Phase II cannot reach yet: {OLD_ID} (nothing to register: old-style id" in out
    assert "registered e1, 6 rows" in out
    assert manage(val, monkeypatch, DEMO_ID, "--undo", "--commit")[0] == 0
    assert column()[DEMO_ID] == "handed off: 6 to register"


def test_a_0_6_0_in_place_registration_still_guards_its_objects_until_undone_and_undo_keeps_them(
        val, contentstore, monkeypatch):
    from edxval.models import Video, VideoTranscript

    saved, pairs = demo(val, contentstore)
    course = parse_course_id(DEMO_ID)
    video_id, language, name = sorted(pairs)[0]
    live_key = etl.handoff(val, DEMO_ID, english_from_transcripts=True).query(
        "edx_video_id == @video_id and language == @language")["live_key"].iloc[0]
    row = VideoTranscript.objects.create(video=Video.objects.get(edx_video_id=video_id), language_code=language,
                                         file_format="srt", provider="Custom")
    row.transcript.name = live_key  # 0.6.0: the row names the live object; edx-val's storage is the tool's bucket
    row.save()
    receipts.write(val, course, {"course_id": DEMO_ID, "epoch": 1, "created_at": "2026-11-01T00:00:00Z",
                                 "undone_at": None, "registered": [{
                                     "edx_video_id": video_id, "language": language, "storage_name": live_key,
                                     "file_format": "srt", "live_key": live_key}], "before": []})
    with pytest.raises(etl.Registered, match="registered in place by 0.6.0"):
        etl.rollback(val, DEMO_ID, force=True)
    assert "registered in place" in etl.vacuum(val, DEMO_ID, retain_days=0).kept[1]
    before = tool_objects(val)
    code, out, err = manage(val, monkeypatch, DEMO_ID, "--undo", "--commit")
    assert code == 0, err
    assert VideoTranscript.objects.count() == 0 and tool_objects(val) == before  # the row went, the object stayed
    assert etl.rollback(val, DEMO_ID, force=True).was_promoted


def test_a_rerun_sharing_video_ids_names_the_course_whose_registration_made_the_rows(val, contentstore,
                                                                                      monkeypatch):
    from edxval.models import VideoTranscript

    saved, pairs = demo(val, contentstore)
    assert manage(val, monkeypatch, DEMO_ID, "--commit")[0] == 0
    rerun = "course-v1:OpenedX+DemoX+Rerun2027"
    import_static(contentstore, DEMO, rerun)
    register_course(contentstore, rerun)
    load_videos(contentstore, os.path.join(DATA, DEMO), rerun)
    assert etl.migrate(val, [rerun]).exit_code == 0
    etl.handoff(val, rerun, english_from_transcripts=True)
    code, out, err = manage(val, monkeypatch, rerun, "--commit")
    assert code == 0, err
    assert out.count("val_row_same") == 6 and out.count(f"shared with {DEMO_ID}") == 6
    assert f"{rerun}: 0 registered, 6 skipped" in out and VideoTranscript.objects.count() == 6


def test_tutors_default_filesystem_storage_takes_the_copies_too(val, contentstore, monkeypatch, tmp_path):
    from django.core.files.storage import FileSystemStorage
    from edxval.models import VideoTranscript

    field = VideoTranscript._meta.get_field("transcript")
    original = field.storage
    saved, pairs = demo(val, contentstore)
    field.storage = FileSystemStorage(location=str(tmp_path / "media"))  # Tutor: /openedx/media/
    try:
        code, _, err = manage(val, monkeypatch, DEMO_ID, "--commit")
        assert code == 0, err
        for video_id, language, name in pairs:
            assert served(video_id, language) == saved[name]
        assert len(list((tmp_path / "media" / "video-transcripts").iterdir())) == 6
    finally:
        field.storage = original


def test_a_rollback_while_the_copies_upload_registers_nothing_and_deletes_them(val, contentstore):
    from edxval.models import VideoTranscript

    from etl.openedx import register

    demo(val, contentstore)
    result = register.plan(val, DEMO_ID)

    def roll_back(point):
        if point == "uploaded":  # every copy saved, the rows not yet committed
            assert len(val_objects(val)) == 6
            etl.rollback(val, DEMO_ID, force=True)

    with pytest.raises(etl.Refused, match="its commit changed since the plan"):
        register.commit(val, result, hook=roll_back)
    assert VideoTranscript.objects.count() == 0 and val_objects(val) == {}
    assert receipts.live(val, parse_course_id(DEMO_ID)) == []


def test_the_app_is_installed_in_studio_and_in_the_lms():
    from importlib.metadata import entry_points

    for group in ("cms.djangoapp", "lms.djangoapp"):  # what edx-django-utils' plugin registry reads
        assert [e.value for e in entry_points(group=group) if e.name == "transcript_etl"] == [
            "etl.openedx.apps:TranscriptEtlConfig"], group


def test_the_tools_identity_and_edx_vals_stay_apart_and_the_check_reads_as_the_lms(val, contentstore, monkeypatch,
                                                                                    s3_endpoint):
    import dataclasses

    from etl.openedx.val import View
    from etl.source import lms
    from tests.s3proxy import FaultProxy

    saved, pairs = demo(val, contentstore)
    field = transcript_field()
    original = field.storage
    with FaultProxy(s3_endpoint) as proxy:  # two IAM identities, each allowed its own bucket only
        proxy.allow({"tool-key": {BUCKET}, "platform-key": {VAL_BUCKET}})
        proxied = dataclasses.replace(val, s3_endpoint_url=proxy.url, s3_client=None)
        monkeypatch.setenv("ETL_AWS_ACCESS_KEY_ID", "tool-key")
        monkeypatch.setenv("ETL_AWS_SECRET_ACCESS_KEY", "tool-secret-never-shown")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "platform-key")  # the platform's identity, as Studio has it
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "platform-secret")
        try:
            field.storage = s3_storage(proxy.url, VAL_BUCKET, access_key=None, secret_key=None)
            code, out, err = manage(proxied, monkeypatch, DEMO_ID, "--commit")
            assert code == 0, err
            assert proxy.used == {"tool-key": {BUCKET}, "platform-key": {VAL_BUCKET}}
            assert "tool-secret-never-shown" not in out + err
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "lms-key")  # an LMS whose identity cannot read edx-val's bucket
            field.storage = s3_storage(proxy.url, VAL_BUCKET, access_key=None, secret_key=None)
            code, out, err = manage(proxied, monkeypatch, DEMO_ID, command="transcript_etl_check")
            assert code == 5 and out.count("edx-val cannot read its copy") == 6
            video_id, language, _ = sorted(pairs)[0]  # and the LMS itself answers 500: it catches only ValueError
            fields = {"edx_video_id": video_id, "transcripts": {language: "x.srt"}}
            assert lms.snapshot(fields, View(), lambda name: None)[("translation", language)][0] == "500"
            proxy.allow({"tool-key": {BUCKET}, "lms-key": {VAL_BUCKET}})
            code, out, err = manage(proxied, monkeypatch, DEMO_ID, command="transcript_etl_check")
            assert code == 0 and f"{DEMO_ID}: 6 of 6 rows serve the registered bytes" in out
        finally:
            field.storage = original


def transcript_field():
    from edxval.models import VideoTranscript

    return VideoTranscript._meta.get_field("transcript")


def _child(val, database, *args):
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, "-m", "tests.children.register", val.s3_endpoint_url, BUCKET, VAL_BUCKET,
                           str(database), *args], cwd=root, capture_output=True, text=True, timeout=300)


def _rows(database):
    import sqlite3

    with sqlite3.connect(database) as db:
        return sorted(name for (name,) in db.execute("SELECT transcript FROM edxval_videotranscript"))


@pytest.mark.parametrize("kill_at, then", [("uploaded", "register"), ("before database commit", "undo")])
def test_a_register_killed_before_its_database_commit_leaves_copies_the_next_register_or_undo_deletes(
        val, tmp_path, kill_at, then):
    database = tmp_path / "edxval.sqlite3"
    killed = _child(val, database, "register", kill_at)
    assert killed.returncode == -9 and f"killed at {kill_at}" in killed.stdout, killed.stderr
    copies = val_objects(val)
    assert len(copies) == 6 and _rows(database) == []  # every copy saved, no row committed
    [(_, receipt, _, _)] = receipts.all_of(val, parse_course_id(DEMO_ID))
    assert receipt["state"] == ("pending" if kill_at == "uploaded" else "live")
    assert {r["storage_name"] for r in receipt["registered"]} == set(copies)  # named before they were made
    after = _child(val, database, then)
    assert after.returncode == 0, after.stderr
    assert "6 orphaned copies deleted" in after.stdout
    if then == "register":
        assert len(_rows(database)) == 6 and sorted(val_objects(val)) == _rows(database)
        assert not set(copies) & set(val_objects(val))
    else:
        assert _rows(database) == [] and val_objects(val) == {}
    assert all(doc.get("undone_at") or doc.get("state") == "live" for _, doc, _, _ in
               receipts.all_of(val, parse_course_id(DEMO_ID)))


def test_an_undo_whose_copy_deletes_fail_is_finished_by_the_next_undo(val, contentstore, monkeypatch):
    from edxval.models import VideoTranscript

    demo(val, contentstore)
    assert manage(val, monkeypatch, DEMO_ID, "--commit")[0] == 0
    field = transcript_field()
    original = field.storage

    class Undeletable(type(original)):
        def delete(self, name):
            raise OSError("the storage refused the delete")

    field.storage = Undeletable(**{k: getattr(original, k) for k in (
        "bucket_name", "endpoint_url", "access_key", "secret_key", "region_name", "addressing_style", "location")})
    try:
        code, _, err = manage(val, monkeypatch, DEMO_ID, "--undo", "--commit")
    finally:
        field.storage = original
    assert code == 3 and "run the undo again: it deletes every copy the receipts name that no row holds" in err
    assert VideoTranscript.objects.count() == 0 and len(val_objects(val)) == 6
    assert len(receipts.live(val, parse_course_id(DEMO_ID))) == 1  # kept live, so the next undo finds its copies
    code, out, err = manage(val, monkeypatch, DEMO_ID, "--undo", "--commit")
    assert code == 0, err
    assert out.count("already gone") == 6 and val_objects(val) == {}
    assert receipts.live(val, parse_course_id(DEMO_ID)) == []
