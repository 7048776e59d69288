"""Find the courses a batch covers: from a list, a file, or every course Open edX knows.

``--all`` is every course in the modulestore (split courses in
``modulestore.active_versions``, old Mongo-modulestore courses in ``modulestore``)
plus every new-style course that has transcripts in the contentstore, found with
one aggregation. Old-style transcripts whose org and course match no course
document cannot be given a run: they are returned as unresolved, never dropped.
"""

import re

from .errors import InvalidId, StorageError, UsageError
from .layout import parse_course_id


def read_course_file(path):
    """Return the course ids in a file: one per line, blank lines and ``#`` comments ignored."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read course list {path}: {exc.strerror}") from None
    ids = [line.split("#", 1)[0].strip() for line in lines]
    return [i for i in ids if i]


def _transcript_match(cfg, prefix):
    pattern = "(" + "|".join(re.escape(s) for s in cfg.transcript_suffixes) + ")$"
    return {f"{prefix}.tag": "c4x", f"{prefix}.category": "asset",
            f"{prefix}.name": {"$regex": pattern, "$options": "i"}}


def _run(what, fn):
    try:
        return fn()
    except Exception as exc:
        raise StorageError(f"reading {what} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}; "
                           "check ETL_MONGO_URI and --modulestore-db") from exc


def modulestore_courses(cfg, modulestore_db=None):
    """Return the set of course ids in the modulestore (libraries excluded)."""
    db = cfg.require_contentstore()
    store = db.client[modulestore_db] if modulestore_db else db
    ids = set()
    split = _run("modulestore.active_versions", lambda: list(store["modulestore.active_versions"].find(
        {"run": {"$ne": "library"}}, {"org": 1, "course": 1, "run": 1})))
    for doc in split:
        ids.add(f"course-v1:{doc.get('org')}+{doc.get('course')}+{doc.get('run')}")
    old = _run("modulestore", lambda: list(store["modulestore"].find({"_id.category": "course"}, {"_id": 1})))
    for doc in old:
        ids.add(f"{doc['_id'].get('org')}/{doc['_id'].get('course')}/{doc['_id'].get('name')}")
    return ids


def contentstore_courses(cfg):
    """Return (new-style course ids with transcripts, {(org, course): count} of old-style transcripts)."""
    db = cfg.require_contentstore()
    new_match = dict(_transcript_match(cfg, "content_son"), **{"content_son.run": {"$exists": True}})
    new = _run("fs.files", lambda: list(db["fs.files"].aggregate([
        {"$match": new_match},
        {"$group": {"_id": {"org": "$content_son.org", "course": "$content_son.course",
                            "run": "$content_son.run"}}}])))
    old_match = dict(_transcript_match(cfg, "_id"), **{"_id.run": {"$exists": False}})
    old = _run("fs.files", lambda: list(db["fs.files"].aggregate([
        {"$match": old_match},
        {"$group": {"_id": {"org": "$_id.org", "course": "$_id.course"}, "n": {"$sum": 1}}}])))
    new_ids = {f"course-v1:{g['_id']['org']}+{g['_id']['course']}+{g['_id']['run']}" for g in new}
    return new_ids, {(g["_id"]["org"], g["_id"]["course"]): g["n"] for g in old}


def all_courses(cfg, modulestore_db=None):
    """Return (sorted valid course ids, unresolved entries) for ``--all``.

    An unresolved entry is a dict with ``what`` and ``reason``: old-style transcripts
    with no course document, or an id that is not a valid course id.
    """
    known = modulestore_courses(cfg, modulestore_db)
    with_transcripts, old_groups = contentstore_courses(cfg)
    valid, unresolved = set(), []
    for course_id in known | with_transcripts:
        try:
            valid.add(str(parse_course_id(course_id)))
        except InvalidId as err:
            unresolved.append({"what": course_id, "reason": str(err)})
    old_courses = {(c.org, c.course) for c in map(parse_course_id, valid) if c.deprecated}
    for (org, course), count in sorted(old_groups.items()):
        if (org, course) not in old_courses:
            unresolved.append({"what": f"{org}/{course}/?", "reason": f"{count} old-style transcripts whose org "
                               "and course match no course document, so they have no run"})
    return sorted(valid), unresolved

