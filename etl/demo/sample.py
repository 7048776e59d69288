"""Write assets into a contentstore exactly as Open edX's ``MongoContentStore.save`` does.

For the demo and the tests only: the migration itself never writes to MongoDB.
New-style assets get the asset key string as ``_id`` and the location fields,
run included, in ``content_son``; old-style assets get the location dict as
``_id`` (no run) and a ``/c4x/...`` filename. Bytes go through legacy GridFS.
"""

import hashlib
import json
from datetime import datetime, timezone

import gridfs
from bson.son import SON

from etl.source.resolve import asset_name
from etl.model.layout import parse_course_id


_FIELDS = ["category", "name", "course", "tag", "org", "revision"]


def asset_location(course_id, name, category="asset"):
    """Return (_id, content_son, filename) for an asset, as edx-platform stores them."""
    course = parse_course_id(course_id)
    son = SON([("category", category), ("name", name), ("course", course.course), ("tag", "c4x"),
               ("org", course.org), ("revision", None)])
    if course.deprecated:
        return son, SON(son), f"/c4x/{course.org}/{course.course}/{category}/{name}"
    son["run"] = course.run
    key = f"asset-v1:{course.org}+{course.course}+{course.run}+type@{category}+block@{name}"
    return key, son, key


def save_asset(db, course_id, name, data, content_type="application/octet-stream", *, category="asset",
               chunk_size=None, legacy_md5=False, upload_date=None):
    """Save one asset into ``db``'s GridFS bucket ``fs``; return its fs.files ``_id``.

    ``legacy_md5`` also stores the ``md5`` field that pymongo 3's GridFS wrote;
    edx-platform itself stores ``custom_md5``.
    """
    file_id, son, filename = asset_location(course_id, name, category)
    fs = gridfs.GridFS(db, "fs")
    fs.delete(file_id)
    extra = {"chunk_size": chunk_size} if chunk_size else {}
    with fs.new_file(_id=file_id, filename=filename, content_type=content_type, displayname=name,
                     content_son=son, thumbnail_location=None, import_path=None, locked=False, **extra) as fp:
        fp.write(data)
        fp.custom_md5 = hashlib.md5(data).hexdigest()
    changes = {}
    if legacy_md5:
        changes["md5"] = hashlib.md5(data).hexdigest()
    if upload_date:
        changes["uploadDate"] = upload_date
    if changes:
        db["fs.files"].update_one({"_id": file_id}, {"$set": changes})
    return file_id


def save_upload(db, course_id, name, data, content_type="application/x-subrip"):
    """Save an asset as Studio's upload and import save it: under the name ``compute_location`` cleans."""
    return save_asset(db, course_id, asset_name(name), data, content_type)


def sjson(cues):
    """Return SJSON bytes for (start_ms, end_ms, text) cues."""
    return json.dumps({"start": [c[0] for c in cues], "end": [c[1] for c in cues],
                       "text": [c[2] for c in cues]}, ensure_ascii=False, indent=1).encode()


def srt(cues):
    """Return SRT bytes for (start_ms, end_ms, text) cues."""
    def ts(ms):
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
    return "".join(f"{i}\n{ts(a)} --> {ts(b)}\n{t}\n\n" for i, (a, b, t) in enumerate(cues, 1)).encode()


def cues(n, text="Welcome to the course", step=2500):
    """Return ``n`` numbered cues."""
    return [(i * step, i * step + step - 100, f"{text}, part {i}.") for i in range(n)]


DEMO_COURSE = "course-v1:DemoOrg+ETL101+2026_T1"


def load_demo_course(db, course_id=DEMO_COURSE):
    """Fill ``db`` with a small sample course: SJSON and SRT transcripts, names Studio really
    produces (unicode and spaces too), a multi-chunk transcript, an empty one, one that does
    not parse, and non-transcript assets and thumbnails that must not migrate. Return the
    number of transcripts written.
    """
    when = datetime(2026, 1, 15, 9, 30, tzinfo=timezone.utc)
    transcripts = {
        "subs_3_yD_cEKoCk.srt.sjson": sjson(cues(40)),
        "es_subs_3_yD_cEKoCk.srt.sjson": sjson(cues(40, "Bienvenidos al curso")),
        "zh_HANS_subs_3_yD_cEKoCk.srt.sjson": sjson(cues(12, "欢迎来到课程")),
        "0b5f9e1c-5a34-4b8e-9d0e-0c9a3f6c2b11-en.srt": srt(cues(60)),
        "0b5f9e1c-5a34-4b8e-9d0e-0c9a3f6c2b11-fr.srt": srt(cues(60, "Bienvenue")),
        "Lecture 2 – Überblick.srt": srt(cues(25, "Überblick")),
        "subs_long_lecture.srt.sjson": sjson(cues(9000, "A long lecture")),  # over one GridFS chunk
        "subs_empty.srt.sjson": b"",
        "subs_broken.srt.sjson": b'{"start": [0, 1000], "end": [900], "text": ["only one end"]}',
    }
    for name, data in transcripts.items():
        save_asset(db, course_id, name, data, "application/json" if name.endswith("sjson") else "text/plain",
                   upload_date=when)
    save_asset(db, course_id, "syllabus.pdf", b"%PDF-1.4 demo", "application/pdf", upload_date=when)
    save_asset(db, course_id, "campus.jpg", b"\xff\xd8\xff demo", "image/jpeg", upload_date=when)
    save_asset(db, course_id, "subs_3_yD_cEKoCk.srt.sjson", b"thumbnail, not a transcript", "image/jpeg",
               category="thumbnail", upload_date=when)
    return len(transcripts)


def register_course(db, course_id):
    """Record a course in the modulestore as Open edX does: split courses in
    ``modulestore.active_versions``, old Mongo-modulestore courses in ``modulestore``."""
    from bson import ObjectId

    course = parse_course_id(course_id)
    if course.deprecated:
        db["modulestore"].insert_one({
            "_id": SON([("tag", "i4x"), ("org", course.org), ("course", course.course), ("category", "course"),
                        ("name", course.run), ("revision", None)]),
            "definition": {"data": {}, "children": []}, "metadata": {"display_name": course.course}})
    else:
        db["modulestore.active_versions"].insert_one({
            "_id": ObjectId(), "org": course.org, "course": course.course, "run": course.run,
            "edited_by": 1, "edited_on": datetime(2026, 1, 1, tzinfo=timezone.utc), "schema_version": 1,
            "versions": {"draft-branch": ObjectId(), "published-branch": ObjectId()}, "search_targets": {}})
