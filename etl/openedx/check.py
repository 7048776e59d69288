"""Check, from the LMS's own settings, that edx-val serves every row a course's registration made."""

from etl.model.errors import NotCommitted
from etl.model.layout import parse_course_id
from etl.openedx import val
from etl.openedx.register import refuse_old_style
from etl.protocol import phase2, receipts
from etl.protocol.known import closest, table_ids
from etl.protocol.state import iso, now


def check(cfg, course_id):
    """Return [(row, problem or None)] for each row the course's live receipts list, and record the result.

    Each row is read through edx-val's API, as the LMS reads it, and its bytes'
    MD5 compared with the receipt's. A row Studio deleted or replaced, or whose
    copy cannot be read, is a problem named by its video and language.
    """
    course = parse_course_id(course_id)
    refuse_old_style(course)
    live = receipts.live(cfg, course)
    if not live:
        hint = closest(str(course), table_ids(cfg))
        raise NotCommitted(f"course {course} has no registration to check{hint}; register it first "
                           f"(`./manage.py cms transcript_etl_register {course} --commit`)")
    results = []
    for _, receipt, _ in live:
        for row in receipt.get("registered") or []:
            current = val.current(row)
            if current is None:
                problem = "no row: deleted in Studio, or undone"
            elif current.transcript.name != row["storage_name"]:
                problem = f"replaced in Studio (now {current.transcript.name})"
            else:
                data = val.served(row["edx_video_id"], row["language"])
                problem = (None if val.md5(data) == row["md5"] else
                           f"edx-val cannot read its copy {row['storage_name']}" if data is None else
                           f"edx-val serves other bytes from {row['storage_name']}")
            results.append((row, problem))
    failed = sum(1 for _, problem in results if problem)
    phase2.record(cfg, course, "checked", {"at": iso(now()), "rows": len(results), "failed": failed})
    return results
