"""Open edX fixtures: real edx-val on Django and sqlite, its storage django-storages' S3 on the suite's moto.

edx-val's storage is a bucket of its own, as on a real site. The plugin's
management commands run in-process (``manage``) with the tool's ETL_* settings
and the test's contentstore behind ETL_MONGO_URI.
"""

import io
import os

import pytest

import etl
from etl.demo.sample import register_course
from tests.helpers import listing
from tests.olx import load_videos
from tests.test_real_exports import DATA, import_static

DEMO, DEMO_ID = "openedx-demo-course", "course-v1:OpenedX+DemoX+DemoCourse"
BUCKET, VAL_BUCKET = "etl-openedx", "etl-openedx-val"  # edx-val's storage is built once per process


def s3_storage(endpoint, bucket, **extra):
    from storages.backends.s3 import S3Storage

    options = {"access_key": "testing", "secret_key": "testing", **extra}  # None: boto3's chain, as on a real site
    return S3Storage(bucket_name=bucket, endpoint_url=endpoint, region_name="us-east-1", addressing_style="path",
                     file_overwrite=False, **options)


def setup_django(database, endpoint, val_bucket=VAL_BUCKET):
    """Configure Django for edx-val on a sqlite file, its transcripts storage ``val_bucket`` on ``endpoint``; migrate.

    A file, not :memory:, so a runner on another thread (the sweeps') or another
    process (tests/children/register.py) sees the same tables, as MySQL would.
    """
    from django.conf import settings

    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "edxval", "etl.openedx"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database,
                               "OPTIONS": {"timeout": 2, "init_command": "PRAGMA synchronous=OFF"}}},
        STORAGES={"default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
                  "video_transcripts": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
                      "bucket_name": val_bucket, "endpoint_url": endpoint, "location": "",
                      "access_key": "testing", "secret_key": "testing", "region_name": "us-east-1",
                      "addressing_style": "path", "file_overwrite": False}}},
        VIDEO_TRANSCRIPTS_SETTINGS={"DIRECTORY_PREFIX": "video-transcripts/"},
        TRANSCRIPT_LANG_CACHE_TIMEOUT=0, USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        TRANSCRIPT_ETL_MODULESTORE="tests.split.StandIn")  # no openedx-platform here: split's documents, as split
    import django as dj

    dj.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return settings


@pytest.fixture(scope="module")
def django(s3_endpoint):
    """Configure Django once: edxval's tables in sqlite, its transcripts storage a bucket of its own on moto."""
    import tempfile

    from django.conf import settings

    if not settings.configured:
        setup_django(os.path.join(tempfile.mkdtemp(prefix="etl-edxval-"), "edxval.sqlite3"), s3_endpoint)
    return settings


@pytest.fixture
def val(django, make_cfg):
    """A Config on the tool's bucket; both buckets and edx-val's tables emptied."""
    from edxval.models import CourseVideo, Video, VideoTranscript

    cfg = make_cfg(bucket=BUCKET)
    names = {b["Name"] for b in cfg.s3.list_buckets()["Buckets"]}
    for bucket in (BUCKET, VAL_BUCKET):
        if bucket not in names:
            cfg.s3.create_bucket(Bucket=bucket)
        for key in keys(cfg, bucket):
            cfg.s3.delete_object(Bucket=bucket, Key=key)
    VideoTranscript.objects.all().delete()
    CourseVideo.objects.all().delete()
    Video.objects.all().delete()
    return cfg


def keys(cfg, bucket):
    pages = cfg.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def val_objects(cfg):
    """Return {key: bytes} of edx-val's storage."""
    return {k: cfg.s3.get_object(Bucket=VAL_BUCKET, Key=k)["Body"].read() for k in keys(cfg, VAL_BUCKET)}


def env(cfg):
    return {"ETL_BUCKET": cfg.bucket, "ETL_S3_ENDPOINT_URL": cfg.s3_endpoint_url, "ETL_STAGING_PREFIX":
            cfg.staging_prefix, "ETL_LIVE_PREFIX": cfg.live_prefix, "ETL_STATE_PREFIX": cfg.state_prefix}


def mongo_env(db, monkeypatch):
    """Point ETL_MONGO_URI at the test's contentstore: a real MongoDB's URI, or mongomock's client behind pymongo's."""
    import pymongo

    uri = os.environ.get("ETL_TEST_MONGO_URI")
    monkeypatch.setenv("ETL_MONGO_DB", db.name)
    if uri:
        monkeypatch.setenv("ETL_MONGO_URI", uri)
    else:
        monkeypatch.setenv("ETL_MONGO_URI", "mongodb://mongomock.invalid:27017")
        monkeypatch.setattr(pymongo, "MongoClient", lambda *args, **kwargs: db.client)


def manage(cfg, monkeypatch, *args, command="transcript_etl_register"):
    """Run ``./manage.py cms COMMAND ARGS``; return (exit code, stdout, stderr)."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    for k, v in env(cfg).items():
        monkeypatch.setenv(k, v)
    mongo_env(cfg.contentstore, monkeypatch)
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
        return 0, out.getvalue(), err.getvalue()
    except CommandError as exc:
        return exc.returncode, out.getvalue(), err.getvalue() + str(exc)


def videos_in_val(blocks, skip=()):
    """Create the Videos edx-val holds for a course's blocks, as Studio's import does."""
    from edxval.models import Video

    for fields in blocks.values():
        if fields.get("edx_video_id") and fields["edx_video_id"] not in skip:
            Video.objects.get_or_create(edx_video_id=fields["edx_video_id"], defaults={
                "client_video_id": "External Video", "duration": 0, "status": "external"})


def served(video_id, language):
    from edxval import api

    found = api.get_video_transcript_data(video_id, language)
    return found and found["content"]


def demo(cfg, db, english=True, skip=()):
    saved = import_static(db, DEMO, DEMO_ID)
    register_course(db, DEMO_ID)
    blocks = load_videos(db, os.path.join(DATA, DEMO), DEMO_ID)
    assert etl.migrate(cfg, [DEMO_ID]).exit_code == 0
    videos_in_val(blocks, skip)
    etl.handoff(cfg, DEMO_ID, english_from_transcripts=english)
    pairs = {(f["edx_video_id"], lang, name) for f in blocks.values() if f.get("edx_video_id")
             for lang, name in (f.get("transcripts") or {}).items() if name}
    return saved, pairs


def tool_objects(cfg):
    return {k: v for k, v in listing(cfg).items() if "/receipts/" not in k and "/phase2/" not in k}
