"""Find the courses a batch covers: from a list, a file, or every course Open edX knows.

``--all`` is every course in the modulestore (split courses in
``modulestore.active_versions``, old Mongo-modulestore courses in ``modulestore``)
plus every new-style course that has transcripts in the contentstore, found with
one aggregation. Old-style transcripts whose org and course match no course
document cannot be given a run: they are returned as unresolved, never dropped.
"""

import re

from etl.model.errors import InvalidId, StorageError, UsageError
from etl.model.layout import parse_course_id
from etl.source.limits import read_limiter


def read_course_file(path):
    """Return the course ids in a file: one per line, blank lines and ``#`` comments ignored."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read course list {path}: {exc.strerror}") from None
    ids = [line.split("#", 1)[0].strip() for line in lines]
    return [i for i in ids if i]


def _transcript_names(cfg):
    return {"$regex": "(" + "|".join(re.escape(s) for s in cfg.transcript_suffixes) + ")$", "$options": "i"}


def _run(cfg, what, fn):
    try:
        read_limiter(cfg).acquire()
        return fn()
    except Exception as exc:
        raise StorageError(f"reading {what} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}; "
                           "check ETL_MONGO_URI and --modulestore-db") from exc


def groups(cfg, collection, first, second, base=None):
    """Yield (a, b) for every distinct pair of ``first``, ``second``, each step served by an index on (first, second, …).

    A distinct of an index's leading field is a scan of that index, not of the
    collection; so is a distinct of the second field with the first fixed.
    """
    base = dict(base or {})
    for a in _run(cfg, collection.name, lambda: collection.distinct(first, base or None)):
        if not isinstance(a, str):
            continue
        narrowed = dict(base, **{first: a})
        for b in _run(cfg, collection.name, lambda: collection.distinct(second, narrowed)):
            if isinstance(b, str):
                yield a, b


def modulestore_courses(cfg, modulestore_db=None):
    """Return the set of course ids in the modulestore (libraries excluded), with index-served queries only."""
    db = cfg.require_contentstore()
    store = db.client[modulestore_db or cfg.modulestore_db] if (modulestore_db or cfg.modulestore_db) else db
    ids = set()
    split = store["modulestore.active_versions"]  # split's course index: (org, course, run)
    for org, course in groups(cfg, split, "org", "course"):
        for doc in _run(cfg, split.name, lambda: list(split.find({"org": org, "course": course}, {"run": 1}))):
            if doc.get("run") and doc["run"] != "library":
                ids.add(f"course-v1:{org}+{course}+{doc['run']}")
    old = store["modulestore"]  # the old modulestore's (_id.tag, _id.org, _id.course, _id.category)
    for org, course in groups(cfg, old, "_id.org", "_id.course", {"_id.tag": "i4x"}):
        query = {"_id.tag": "i4x", "_id.org": org, "_id.course": course, "_id.category": "course"}
        for doc in _run(cfg, old.name, lambda: list(old.find(query, {"_id": 1}))):
            ids.add(f"{org}/{course}/{doc['_id'].get('name')}")
    return ids


def contentstore_courses(cfg):
    """Return (new-style course ids with transcripts, {(org, course): count} of old-style transcripts).

    Every query is served by one of edx-platform's fs.files indexes, which lead
    with (content_son.org, content_son.course) or (_id.org, _id.course).
    """
    db = cfg.require_contentstore()
    files, names = db["fs.files"], _transcript_names(cfg)
    new_ids, old = set(), {}
    for org, course in groups(cfg, files, "content_son.org", "content_son.course"):
        query = {"content_son.org": org, "content_son.course": course, "content_son.tag": "c4x",
                 "content_son.category": "asset", "content_son.name": names, "content_son.run": {"$exists": True}}
        for run in _run(cfg, "fs.files", lambda: files.distinct("content_son.run", query)):
            new_ids.add(f"course-v1:{org}+{course}+{run}")
    for org, course in groups(cfg, files, "_id.org", "_id.course"):
        query = {"_id.org": org, "_id.course": course, "_id.tag": "c4x", "_id.category": "asset",
                 "_id.name": names, "_id.run": {"$exists": False}}
        count = _run(cfg, "fs.files", lambda: files.count_documents(query))
        if count:
            old[(org, course)] = count
    return new_ids, old


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

