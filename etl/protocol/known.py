"""Refuse a course id nobody knows, naming the closest one that exists: the typo check of every verb."""

import difflib
from urllib.parse import unquote

from etl.model.errors import UsageError
from etl.model.layout import Layout, parse_course_id
from etl.source import contentstore
from etl.source.discover import all_courses
from etl.store import pool, s3


def table_ids(cfg):
    """Return the course ids the status table has a record for (one listing)."""
    prefix = f"{cfg.state_prefix}/courses/"
    return [unquote(o["Key"][len(prefix):-5]) for o in s3.list_objects(cfg, prefix) if o["Key"].endswith(".json")]


def closest(course_id, candidates):
    """Return " (did you mean X?)" for the closest candidate, or ""."""
    found = difflib.get_close_matches(course_id, sorted(set(candidates)), n=1, cutoff=0.75)
    return f" (did you mean {found[0]}?)" if found else ""


def unknown(course_id, candidates, where):
    """Return the UsageError for an unknown course."""
    return UsageError(f"unknown course {course_id}: {where}{closest(course_id, candidates)}; nothing was "
                      "done; check the id (and --mongo-db, --modulestore-db, --state-prefix)")


def is_known(cfg, course):
    """Tell whether the contentstore or modulestore knows a course, or the status table has a record of it."""
    if cfg.contentstore is not None and contentstore.course_known(cfg, course):
        return True
    return s3.head(cfg, Layout.of(cfg, course).record) is not None


def refuse_unknown(cfg, course_ids):
    """Refuse the first course id that nothing knows, with a suggestion; do nothing when every one is known."""
    courses = [parse_course_id(c) for c in course_ids]
    known = pool.run_all(cfg, lambda course: is_known(cfg, course), courses)
    missing = [str(c) for c, ok in zip(courses, known) if not ok]
    if not missing:
        return
    candidates = table_ids(cfg) + (all_courses(cfg)[0] if cfg.contentstore is not None else [])
    where = ("neither the modulestore, the contentstore nor the status table has it" if cfg.contentstore is not None
             else "the status table has no record of it, so the tool has never worked on it")
    err = unknown(missing[0], candidates, where)
    if len(missing) > 1:
        err = UsageError(f"{err} ({len(missing) - 1} more unknown: {', '.join(missing[1:4])}"
                         f"{'…' if len(missing) > 4 else ''})")
    raise err
