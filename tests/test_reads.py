"""Reads that are safe on a live production MongoDB: every query index-served, secondaries welcome, a rate cap.

A recording wrapper around the Database handed to the Config notes every query
the tool sends; each filter's leading equality fields must match an index that
Open edX or GridFS creates, so no query the tool sends can scan a collection.
"""

import pymongo
import pytest

import etl
from etl.source.limits import ReadLimiter, read_limiter
from etl.source import contentstore as cs
from etl.model.config import config_from_env
from etl.model.layout import parse_course_id
from etl.demo.sample import register_course, save_asset, srt, cues
from tests.conftest import COURSE, OLD, fill

# The indexes Open edX and GridFS create, by collection: edx-platform's MongoContentStore.ensure_indexes on
# fs.files, GridFS's unique (files_id, n) on fs.chunks, split's course index (org, course, run) on
# modulestore.active_versions, and the old modulestore's (_id.tag, _id.org, _id.course, _id.category).
INDEXES = {
    "fs.files": [("content_son.org", "content_son.course", "uploadDate"),
                 ("content_son.org", "content_son.course", "content_son.name"),
                 ("content_son.org", "content_son.course", "displayname"),
                 ("_id.org", "_id.course", "_id.name"), ("_id.org", "_id.course", "uploadDate"),
                 ("_id.org", "_id.course", "displayname")],
    "fs.chunks": [("files_id", "n")],
    "modulestore.active_versions": [("org", "course", "run")],
    "modulestore": [("_id.tag", "_id.org", "_id.course", "_id.category")],
    "modulestore.structures": [("_id",)],  # split reads a structure by the id its course's index names
}


class Recorder:
    """Wrap a Database (or a collection) and note every query sent through it."""

    def __init__(self, target, log, name=None):
        self._target, self._log, self._name = target, log, name

    def __getitem__(self, name):
        return Recorder(self._target[name], self._log, name)

    @property
    def client(self):
        recorder = self

        class Client:
            def __getitem__(self, name):
                return Recorder(recorder._target.client[name], recorder._log)
        return Client()

    def find(self, filter=None, *args, **kwargs):
        self._log.append((self._name, "find", dict(filter or {}), None))
        return self._target.find(filter, *args, **kwargs)

    def find_one(self, filter=None, *args, **kwargs):
        self._log.append((self._name, "find", dict(filter or {}), None))
        return self._target.find_one(filter, *args, **kwargs)

    def count_documents(self, filter, *args, **kwargs):
        self._log.append((self._name, "count", dict(filter), None))
        return self._target.count_documents(filter, *args, **kwargs)

    def distinct(self, key, filter=None, *args, **kwargs):
        self._log.append((self._name, "distinct", dict(filter or {}), key))
        return self._target.distinct(key, filter, *args, **kwargs)

    def aggregate(self, pipeline, *args, **kwargs):
        first = pipeline[0].get("$match", {}) if pipeline else {}
        self._log.append((self._name, "aggregate", dict(first), None))
        return self._target.aggregate(pipeline, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._target, name)


def equality_fields(filter):
    return {k for k, v in filter.items() if not isinstance(v, dict) or set(v) <= {"$in", "$eq"}}


def served(collection, kind, filter, key):
    """Tell whether an index of ``collection`` serves this query: its first field is matched by equality."""
    fields = equality_fields(filter)
    for index in INDEXES.get(collection, []):
        if index[0] in fields:
            return True
        if kind == "distinct" and key == index[0] and not filter:
            return True  # a distinct scan of the index's first field
        if kind == "distinct" and key in index and set(index[:index.index(key)]) <= fields:
            return True
    return False


@pytest.fixture
def recorded(make_cfg, contentstore):
    log = []
    return make_cfg(contentstore=Recorder(contentstore, log)), log


def test_every_query_of_every_verb_is_served_by_an_index(recorded, contentstore, tmp_path):
    cfg, log = recorded
    for course_id in (COURSE, OLD):
        register_course(contentstore, course_id)
        fill(contentstore, course_id)
    save_asset(contentstore, "edX/Lost/x", "subs_unresolved.srt.sjson", b"{}")
    etl.migrate(cfg, "all", workers=1)
    etl.verify(cfg, OLD)
    etl.diff(cfg, COURSE)
    etl.report(cfg)
    etl.diff_all(cfg, str(tmp_path / "pack"))
    etl.handoff(cfg, COURSE)
    etl.handoff(cfg, OLD)
    etl.rollback(cfg, COURSE, force=True)
    etl.migrate(cfg, [COURSE, OLD], dry_run=True)
    collections = {c for c, _, _, _ in log}
    assert {"fs.files", "fs.chunks", "modulestore.active_versions", "modulestore"} <= collections
    scans = [entry for entry in log if not served(*entry)]
    assert scans == [], f"{len(scans)} queries would scan a collection, e.g. {scans[0]}"


def test_an_old_style_asset_whose_chunks_are_missing_is_corrupt_without_a_scan(recorded, contentstore):
    cfg, log = recorded
    save_asset(contentstore, OLD, "subs_lost.srt.sjson", srt(cues(3)))
    contentstore["fs.chunks"].delete_many({})
    with pytest.raises(etl.CorruptSource, match="subs_lost.srt.sjson"):
        etl.extract(cfg, OLD)
    assert [entry for entry in log if not served(*entry)] == []


def test_old_style_chunks_are_looked_up_in_open_edx_field_order_then_as_stored():
    stored = {"tag": "c4x", "org": "edX", "course": "DemoX", "category": "asset", "name": "a.srt", "revision": None}
    asset = cs.Asset("/c4x/edX/DemoX/asset/a.srt", "a.srt", None, 1, 1, None, None, stored)
    forms = cs.chunk_ids(parse_course_id(OLD), asset)
    assert list(forms[0]) == ["category", "name", "course", "tag", "org", "revision"]
    assert list(forms[1]) == list(stored)
    new = cs.Asset("asset-v1:a+b+c+type@asset+block@a.srt", "a.srt", None, 1, 1, None, None, "asset-v1:x")
    assert cs.chunk_ids(parse_course_id(COURSE), new) == ["asset-v1:x"]


def test_read_preference_in_the_uri_is_what_the_contentstore_reads_with():
    cfg = config_from_env({"bucket": "etl-bucket", "mongo_uri": "mongodb://127.0.0.1:1/?readPreference=secondaryPreferred"},
                          environ={})
    assert cfg.contentstore.read_preference == pymongo.ReadPreference.SECONDARY_PREFERRED
    assert config_from_env({"bucket": "etl-bucket", "mongo_uri": "mongodb://127.0.0.1:1/"},
                           environ={}).contentstore.read_preference == pymongo.ReadPreference.PRIMARY


def test_the_read_limiter_spaces_reads_across_threads_by_its_rate():
    now, started = [100.0], []

    def sleep(seconds):
        started.append(now[0] + seconds)  # the read starts once the sleep is over

    limiter = ReadLimiter(10, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.acquire()
    assert started == pytest.approx([100.1, 100.2, 100.3, 100.4])  # the first went at once
    now[0] = 200.0  # much later: no debt is carried, the next read goes at once
    limiter.acquire()
    assert len(started) == 4
    unlimited = ReadLimiter(0, clock=lambda: now[0], sleep=sleep)
    for _ in range(100):
        unlimited.acquire()
    assert len(started) == 4


def test_max_reads_per_second_caps_the_queries_a_migration_sends(make_cfg, contentstore):
    fill(contentstore)
    cfg = make_cfg(max_reads_per_second=1000)
    etl.extract(cfg, COURSE)
    assert read_limiter(cfg).granted >= 2  # fs.files and fs.chunks, at least
