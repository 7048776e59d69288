"""A deterministic batch of courses, rebuilt identically by any process (the tool never writes to it)."""

from datetime import datetime, timezone

import gridfs

from etl.demo.sample import asset_location, cues, register_course, save_asset, sjson, srt

WHEN = datetime(2026, 2, 1, 12, 0, tzinfo=timezone.utc)


def batch_ids(n):
    """Return ``n`` course ids, every fourth one old-style."""
    return [f"Org{i % 3}/Course{i}/Run{i}" if i % 4 == 0 else f"course-v1:Org{i % 3}+Course{i}+Run{i}"
            for i in range(n)]


def build_batch(db, n):
    """Fill ``db`` with ``n`` registered courses of 0 to 6 transcripts, a few multi-chunk; return the ids."""
    ids = batch_ids(n)
    for i, course_id in enumerate(ids):
        register_course(db, course_id)
        for j in range(i % 7):
            body = sjson(cues(3 + (i * j) % 40, f"course {i} video {j}"))
            save_asset(db, course_id, f"subs_video{j}.srt.sjson", body, "application/json", upload_date=WHEN)
        if i % 10 == 3:
            save_asset(db, course_id, "lecture-en.srt", srt(cues(6000, f"long {i}")), "text/plain", upload_date=WHEN)
        save_asset(db, course_id, "handout.pdf", b"%PDF-1.4 " + str(i).encode(), "application/pdf", upload_date=WHEN)
    return ids


def source_transcripts(db, course_id, suffixes=(".srt", ".sjson")):
    """Return {asset name: bytes} of a course's transcripts, read with GridFS itself (not the tool)."""
    fs = gridfs.GridFS(db, "fs")
    prefix = "_id" if "/" in course_id else "content_son"
    org, course = (course_id.split("/")[:2] if "/" in course_id
                   else course_id.split(":", 1)[1].split("+")[:2])
    query = {f"{prefix}.org": org, f"{prefix}.course": course, f"{prefix}.category": "asset"}
    out = {}
    for doc in db["fs.files"].find(query, {"_id": 1, "content_son": 1}):
        name = (doc["_id"] if prefix == "_id" else doc["content_son"])["name"]
        if not name.lower().endswith(suffixes):
            continue
        if prefix == "content_son" and asset_location(course_id, name)[0] != doc["_id"]:
            continue  # another run of the same course
        out[name] = fs.get(doc["_id"]).read()
    return out


def build_course(db, course_id, n=8):
    """Fill ``db`` with one course of ``n`` transcripts (one multi-chunk), the same in every process."""
    register_course(db, course_id)
    for j in range(n):
        body = sjson(cues(9000, f"lecture {j}")) if j == 0 else srt(cues(3 + j, f"video {j}"))
        save_asset(db, course_id, f"subs_lecture{j}.srt.sjson" if j == 0 else f"video{j}-en.srt", body,
                   upload_date=WHEN)
    return course_id
