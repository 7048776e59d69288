"""Open edX's plugin: edxval on Django and sqlite, its S3 storage on the suite's moto, registering in place."""

import io
import os

import pytest

import etl
from etl.demo.sample import cues, register_course, save_asset, sjson, srt
from etl.model.layout import parse_course_id
from etl.protocol import receipts
from tests.helpers import listing
from tests.olx import load_videos
from tests.test_real_exports import DATA, import_static

pytest.importorskip("edxval")
pytest.importorskip("storages")

DEMO, DEMO_ID = "openedx-demo-course", "course-v1:OpenedX+DemoX+DemoCourse"
OLD_ID = "edX/DemoX/Demo_Course"
BUCKET = "etl-openedx"  # edx-val's storage is built once per process, so its bucket is the module's


@pytest.fixture(scope="module")
def django(s3_endpoint):
    """Configure Django once: edxval's tables in sqlite, its transcripts storage on the suite's S3 endpoint."""
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "edxval", "etl.openedx"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            STORAGES={"default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
                      "video_transcripts": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
                          "bucket_name": BUCKET, "endpoint_url": s3_endpoint, "location": "",
                          "access_key": "testing", "secret_key": "testing", "region_name": "us-east-1",
                          "addressing_style": "path", "file_overwrite": False}}},
            TRANSCRIPT_LANG_CACHE_TIMEOUT=0, USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.AutoField")
        import django as dj

        dj.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    return settings


@pytest.fixture
def val(django, make_cfg):
    """A Config on the module's bucket (emptied per test), and edx-val's tables emptied."""
    from edxval.models import Video, VideoTranscript

    cfg = make_cfg(bucket=BUCKET)
    if not any(b["Name"] == BUCKET for b in cfg.s3.list_buckets()["Buckets"]):
        cfg.s3.create_bucket(Bucket=BUCKET)
    for key in listing(cfg):
        cfg.s3.delete_object(Bucket=BUCKET, Key=key)
    VideoTranscript.objects.all().delete()
    Video.objects.all().delete()
    return cfg


def env(cfg):
    return {"ETL_BUCKET": cfg.bucket, "ETL_S3_ENDPOINT_URL": cfg.s3_endpoint_url, "ETL_STAGING_PREFIX":
            cfg.staging_prefix, "ETL_LIVE_PREFIX": cfg.live_prefix, "ETL_STATE_PREFIX": cfg.state_prefix}


def manage(cfg, monkeypatch, *args):
    """Run ``./manage.py cms transcript_etl_register ARGS``; return (exit ok, stdout, stderr)."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    for k, v in env(cfg).items():
        monkeypatch.setenv(k, v)
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("transcript_etl_register", *args, stdout=out, stderr=err)
        return True, out.getvalue(), err.getvalue()
    except CommandError:
        return False, out.getvalue(), err.getvalue()


def videos_in_val(blocks):
    """Create the Videos edx-val holds for a course's blocks (Studio creates them; the plugin never does)."""
    from edxval.models import Video

    for fields in blocks.values():
        if fields.get("edx_video_id"):
            Video.objects.get_or_create(edx_video_id=fields["edx_video_id"], defaults={
                "client_video_id": f"{fields['edx_video_id']}.mp4", "duration": 0, "status": "external"})


def served(video_id, language):
    from edxval import api

    return api.get_video_transcript_data(video_id, language)["content"]


def demo(cfg, db):
    saved = import_static(db, DEMO, DEMO_ID)
    register_course(db, DEMO_ID)
    blocks = load_videos(db, os.path.join(DATA, DEMO), DEMO_ID)
    assert etl.migrate(cfg, [DEMO_ID]).exit_code == 0
    videos_in_val(blocks)
    etl.handoff(cfg, DEMO_ID)
    return saved, blocks


def test_a_dry_run_writes_no_row_and_commit_registers_rows_edx_val_serves_byte_for_byte(val, contentstore,
                                                                                          monkeypatch):
    from edxval.models import VideoTranscript

    storage = VideoTranscript._meta.get_field("transcript").storage
    assert type(storage).__name__ == "S3Storage" and storage.bucket_name == BUCKET
    saved, blocks = demo(val, contentstore)
    before = listing(val)
    ok, out, _ = manage(val, monkeypatch, DEMO_ID)
    assert ok and "would register" in out and "dry run" in out and VideoTranscript.objects.count() == 0
    ok, out, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert ok, err
    named = {(f["edx_video_id"], lang, name) for f in blocks.values() if f.get("edx_video_id")
             for lang, name in (f.get("transcripts") or {}).items() if name}
    assert VideoTranscript.objects.count() == len(named)
    for video_id, language, name in named:
        assert served(video_id, language) == saved[name]  # edx-val reads the live object, in place
    after = listing(val)
    assert set(after) - set(before) == {k for k in after if "/receipts/" in k}  # only the receipt is new
    assert {k: v for k, v in after.items() if "/receipts/" not in k} == before


def test_sjson_an_old_style_key_and_a_unicode_name_are_served_too(val, contentstore, monkeypatch):
    from edxval.models import Video

    name, data = "Überblick – Vorlesung 1-de.srt", srt(cues(4, "Grüße"))
    save_asset(contentstore, OLD_ID, name, data)
    save_asset(contentstore, OLD_ID, "subs_lecture1.srt.sjson", sjson(cues(3)))
    register_course(contentstore, OLD_ID)
    contentstore["modulestore"].insert_one({"_id": {"tag": "i4x", "org": "edX", "course": "DemoX",
                                                    "category": "video", "name": "v1", "revision": None},
                                            "metadata": {"edx_video_id": "old-vid", "sub": "lecture1",
                                                         "transcripts": {"de": name}}})
    etl.migrate(val, [OLD_ID])
    Video.objects.create(edx_video_id="old-vid", client_video_id="old.mp4", duration=0, status="external")
    df = etl.handoff(val, OLD_ID)
    assert set(df["status"]) == {"ok"} and "%2F" in df["live_key"].iloc[0]
    ok, _, err = manage(val, monkeypatch, OLD_ID, "--commit")
    assert ok, err
    assert served("old-vid", "de") == data
    assert served("old-vid", "en") == sjson(cues(3))


def test_an_existing_row_is_left_untouched(val, contentstore, monkeypatch):
    from edxval.models import Video, VideoTranscript

    demo(val, contentstore)
    video = Video.objects.get(edx_video_id="48c991fb-083c-45e1-adad-930d2b11b11e")
    mine = VideoTranscript.objects.create(video=video, language_code="en", file_format="srt", provider="Custom")
    mine.transcript.name = "operator/own-en.srt"
    mine.save()
    ok, out, _ = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert ok and "val_row_exists" in out
    mine.refresh_from_db()
    assert mine.transcript.name == "operator/own-en.srt"
    receipt = receipts.live(val, parse_course_id(DEMO_ID))[0][1]
    assert {"edx_video_id": video.edx_video_id, "language": "en", "storage_name": "operator/own-en.srt",
            "file_format": "srt"} in receipt["before"]


def test_a_course_not_committed_and_a_stale_hand_off_are_refused(val, contentstore, monkeypatch):
    from edxval.models import VideoTranscript

    register_course(contentstore, "course-v1:Not+Yet+2026")
    ok, _, err = manage(val, monkeypatch, "course-v1:Not+Yet+2026", "--commit")
    assert not ok and "not committed" in err
    demo(val, contentstore)
    ok, _, err = manage(val, monkeypatch, DEMO_ID.replace("DemoX", "DemX"), "--commit")  # a typo
    assert not ok and f"not committed (did you mean {DEMO_ID}?)" in err
    etl.rollback(val, DEMO_ID, force=True)
    etl.migrate(val, [DEMO_ID])  # a new epoch: the hand-off names the old one
    ok, _, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert not ok and "stale" in err and VideoTranscript.objects.count() == 0


def test_a_storage_location_prefix_gives_names_relative_to_it(val, contentstore, monkeypatch):
    from edxval.models import VideoTranscript

    field = VideoTranscript._meta.get_field("transcript")
    original = field.storage
    from storages.backends.s3 import S3Storage

    field.storage = S3Storage(bucket_name=BUCKET, endpoint_url=val.s3_endpoint_url, location=val.live_prefix,
                              access_key="testing", secret_key="testing", region_name="us-east-1",
                              addressing_style="path")
    try:
        saved, blocks = demo(val, contentstore)
        ok, _, err = manage(val, monkeypatch, DEMO_ID, "--commit")
        assert ok, err
        names = list(VideoTranscript.objects.values_list("transcript", flat=True))
        assert names and all(not n.startswith(val.live_prefix) for n in names)
        some = VideoTranscript.objects.first()
        assert served(some.video.edx_video_id, some.language_code) in saved.values()
    finally:
        field.storage = original


def test_a_name_over_255_characters_is_skipped(val, contentstore, monkeypatch):
    from edxval.models import Video, VideoTranscript

    course, name = "course-v1:Long+Name+2026", "n" * 236 + "-en.srt"
    register_course(contentstore, course)
    save_asset(contentstore, course, name, srt(cues(2)))
    index = contentstore["modulestore.active_versions"].find_one({"org": "Long"})
    for branch in ("published", "draft"):
        contentstore["modulestore.structures"].insert_one({"_id": index["versions"][f"{branch}-branch"], "blocks": [
            {"block_type": "video", "block_id": "v", "fields": {"edx_video_id": "long", "transcripts": {"en": name}}}]})
    etl.migrate(val, [course])
    Video.objects.create(edx_video_id="long", client_video_id="long.mp4", duration=0, status="external")
    etl.handoff(val, course)
    ok, out, _ = manage(val, monkeypatch, course, "--commit")
    assert ok and "name_too_long" in out and VideoTranscript.objects.count() == 0


def test_a_failure_in_the_middle_of_a_course_leaves_no_rows(val, contentstore, monkeypatch):
    from edxval import api
    from edxval.models import VideoTranscript

    demo(val, contentstore)
    real, calls = api.create_or_update_video_transcript, []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "create_or_update_video_transcript", flaky)
    with pytest.raises(RuntimeError):
        manage(val, monkeypatch, DEMO_ID, "--commit")
    assert len(calls) == 3 and VideoTranscript.objects.count() == 0
    assert receipts.live(val, parse_course_id(DEMO_ID)) == []


def test_undo_removes_exactly_the_receipts_rows_and_leaves_every_object(val, contentstore, monkeypatch):
    from edxval.models import VideoTranscript

    demo(val, contentstore)
    assert manage(val, monkeypatch, DEMO_ID, "--commit")[0]
    registered = VideoTranscript.objects.count()
    course = parse_course_id(DEMO_ID)
    with pytest.raises(etl.Registered, match="--undo --commit"):
        etl.rollback(val, DEMO_ID, force=True)
    epoch = etl.committed(val, DEMO_ID)["epoch"]
    kept = etl.vacuum(val, DEMO_ID, retain_days=0).kept
    assert "registered in Open edX" in kept[epoch]
    objects = {k: v for k, v in listing(val).items() if "/receipts/" not in k}
    ok, out, _ = manage(val, monkeypatch, DEMO_ID, "--undo")
    assert ok and "would remove" in out and VideoTranscript.objects.count() == registered
    ok, out, err = manage(val, monkeypatch, DEMO_ID, "--undo", "--commit")
    assert ok, err
    assert VideoTranscript.objects.count() == 0 and receipts.live(val, course) == []
    assert {k: v for k, v in listing(val).items() if "/receipts/" not in k} == objects  # no object deleted
    assert etl.rollback(val, DEMO_ID, force=True).was_promoted  # the guard lifts with the registration


def test_the_2015_course_registers_nothing_its_videos_have_no_edx_video_id(val, contentstore, monkeypatch):
    from edxval.models import VideoTranscript

    import_static(contentstore, "edx-demox-2015-export", OLD_ID)
    register_course(contentstore, OLD_ID)
    load_videos(contentstore, os.path.join(DATA, "edx-demox-2015-export"), OLD_ID)
    etl.migrate(val, [OLD_ID])
    etl.handoff(val, OLD_ID)
    ok, out, _ = manage(val, monkeypatch, OLD_ID, "--commit")
    assert ok and "no_edx_video_id" in out and f"{OLD_ID}: 0 registered" in out
    assert VideoTranscript.objects.count() == 0 and receipts.live(val, parse_course_id(OLD_ID)) == []


def test_a_missing_or_changed_live_object_refuses_the_course(val, contentstore, monkeypatch):
    from edxval.models import VideoTranscript

    demo(val, contentstore)
    from etl.handoff import read

    rows = read(val, parse_course_id(DEMO_ID))[0]
    key = rows.loc[rows["status"] == "ok", "live_key"].iloc[0]
    val.s3.put_object(Bucket=BUCKET, Key=key, Body=b"1\n00:00:00,000 --> 00:00:01,000\nchanged\n")
    ok, _, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert not ok and "missing or differ" in err and "python -m etl verify" in err
    assert VideoTranscript.objects.count() == 0
    val.s3.delete_object(Bucket=BUCKET, Key=key)
    ok, _, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert not ok and "missing or differ" in err and VideoTranscript.objects.count() == 0
