"""Delete the copies in edx-val's storage that a receipt names and no row holds, and keep each course's summary true.

A copy is named by a receipt before it is saved (``etl.protocol.receipts``), so
whatever stopped a registration or an undo (an error, a failed delete, a
SIGKILL, Studio replacing a row since), the next register or undo of the course
finds every copy left behind: one its receipt names, that no VideoTranscript row
holds, whose receipt no registration at work still holds. Only receipts of
uploads are read; a 0.6.0 receipt's rows name the tool's own objects, which are
never deleted here.
"""

from dataclasses import dataclass

from etl.model.layout import parse_course_id
from etl.openedx import val
from etl.protocol import phase2, receipts


@dataclass
class Orphans:
    """A receipt nobody holds, the copies it names that no row holds, and why it is to be closed (or '')."""

    course_id: str
    key: str
    receipt: dict
    tag: str
    names: list
    close: str = ""


def orphans(cfg, course_ids):
    """Return the Orphans of these courses' receipts: what the next commit of a register or undo deletes first."""
    found = []
    for course_id in course_ids:
        for key, doc, tag, age in receipts.all_of(cfg, parse_course_id(course_id)):
            if doc.get("mode") != receipts.UPLOAD or receipts.held(doc, age, cfg.clock):
                continue
            rows = doc.get("registered") or []
            names = [r["storage_name"] for r in rows
                     if r.get("storage_name") and not val.held(r["storage_name"]) and val.exists(r["storage_name"])]
            close = ""
            if not doc.get("undone_at"):
                if doc.get("state") == receipts.PENDING:
                    close = "its registration never committed"
                elif rows and not any(_holds(r) for r in rows):
                    close = "no row it registered remains"
            if names or close:
                found.append(Orphans(course_id, key, doc, tag, names, close))
    return found


def _holds(row):
    current = val.current(row)
    return current is not None and current.transcript.name == row["storage_name"]


def settle(cfg, found):
    """Close each abandoned receipt (If-Match), then delete the copies it names that no row holds.

    A receipt that changed since it was read is left alone: whoever changed it
    holds it. Return the names that could not be deleted.
    """
    left, touched = [], set()
    for orphan in found:
        course = parse_course_id(orphan.course_id)
        if orphan.close and not receipts.abandon(cfg, course, orphan.key, orphan.tag, orphan.close):
            continue
        left += val.discard([name for name in orphan.names if not val.held(name)])
        touched.add(orphan.course_id)
    for course_id in sorted(touched):
        record(cfg, parse_course_id(course_id))
    return left


def record(cfg, course):
    """Write the course's Phase II summary section ``registered`` from its live receipts, when it changed."""
    live = receipts.live(cfg, course)
    rows = sum(len(doc.get("registered") or []) for _, doc, _ in live)
    value = None
    if rows:
        key, doc, _ = live[-1]
        value = {"epoch": int(doc["epoch"]), "rows": rows, "at": doc.get("created_at"), "receipt": key}
    if phase2.read(cfg, course).get("registered") != value:
        phase2.record(cfg, course, "registered", value)
