"""Turn Phase II off for a course: remove exactly the edx-val rows its receipts list, then their copies.

A row is removed only while it still holds what was registered (an author's
replacement is left, and said so). A row another course's live receipt also
lists (a family registered together) is removed only with that course, by
``with_shared``: turned on together, turned off together. Rows go in one
database transaction; once it has committed, every copy the receipts name that
no row holds is deleted, then the receipts are marked undone. A failure at any
point leaves the receipts live, so the next undo (or register) finishes the job:
it deletes whatever copies are left, even when the rows are already gone. A
receipt with a row kept for another course stays live: the course is still served
from edx-val through it.
"""

from django.db import transaction

from etl.model.errors import Refused
from etl.model.layout import parse_course_id
from etl.openedx import copies, mint, val
from etl.openedx.register import Plan
from etl.protocol import receipts
from etl.protocol.state import iso, now
from etl.source.pairs import Skip
from etl.store import s3


def plan_undo(cfg, course_id, with_shared=False):
    """Plan removing the rows of the course's live receipts (with ``with_shared``, its family's) that still hold theirs."""
    course = parse_course_id(course_id)
    live = {str(course): receipts.live(cfg, course)}
    others = _others(cfg, str(course))
    if with_shared:
        todo = [str(course)]
        while todo:
            names = {r.get("storage_name") for _, doc, _ in live[todo.pop()] for r in doc.get("registered") or []}
            for other, name in sorted(others):
                if name in names and other not in live:
                    live[other] = receipts.live(cfg, parse_course_id(other))
                    todo.append(other)
    family = list(live)
    result = Plan(family, receipts=live)
    holders = {}
    for other, name in others:
        if other not in live:
            holders.setdefault(name, []).append(other)
    taken = set()
    for member in family:
        for key, receipt, _ in live[member]:
            for row in receipt.get("registered") or []:
                current = val.current(row)
                row = dict(row, course_id=member)
                if current is None:
                    result.skip.append(Skip(row, "already gone"))
                elif current.transcript.name != row["storage_name"]:
                    result.skip.append(Skip(row, f"replaced since registration (now {current.transcript.name}); left"))
                elif holders.get(row["storage_name"]):  # its receipt stays live: the course is still served so
                    result.skip.append(Skip(dict(row, receipt=key), f"also registered for "
                                            f"{', '.join(holders[row['storage_name']])}; undo them together with "
                                            "--with-shared"))
                elif current.pk not in taken:  # a 0.6.0 row registered in place names the tool's object: only the row
                    taken.add(current.pk)
                    result.act.append(dict(row, pk=current.pk, copy=receipt.get("mode") == receipts.UPLOAD))
    result.orphans = copies.orphans(cfg, family)
    result.mints = [(key, doc, tag) for member in family for key, doc, tag, _ in mint.receipts_of(
        cfg, parse_course_id(member)) if doc.get("state") == receipts.LIVE and not doc.get("undone_at")]
    for _, doc, _ in result.mints:
        for entry in doc.get("minted") or []:
            for branch in entry["branches"]:
                current = mint.video_id(cfg, parse_course_id(doc["course_id"]), entry["usage_key"], branch)
                if current and current != entry["video_id"]:
                    result.skip.append(Skip({"course_id": doc["course_id"], "usage_key": entry["usage_key"],
                                             "branch": branch, "edx_video_id": current, "language": "-"},
                                            f"an author changed its id since it was minted ({entry['video_id']}); "
                                            "left as it is"))
    return result


def _others(cfg, course_id):
    """Return {(course id, copy name)} that live receipts of every other course name."""
    found = set()
    mine = f"{cfg.state_prefix}/receipts/"
    for obj in s3.list_objects(cfg, mine):
        doc = s3.get_json(cfg, obj["Key"])[0] if obj["Key"].endswith(".json") else None
        if not doc or doc.get("course_id") == course_id or doc.get("undone_at") \
                or doc.get("state", receipts.LIVE) != receipts.LIVE:
            continue
        found |= {(doc["course_id"], r.get("storage_name")) for r in doc.get("registered") or []}
    return found


def commit_undo(cfg, result):
    """Delete the planned rows; once the database has committed, every copy left; then mark the receipts undone.

    Ids ``--mint-ids`` gave go last, once no row serves them (a killed mint run's first).
    """
    mint.settle(cfg, result.courses)
    with transaction.atomic():
        val.rows_by_pk([row["pk"] for row in result.act]).delete()
    names = {r["storage_name"] for member in result.courses for _, doc, _ in result.receipts[member]
             if doc.get("mode") == receipts.UPLOAD for r in doc.get("registered") or []}
    left = val.discard(sorted(n for n in names if n and not val.held(n)))
    mine = {key for member in result.courses for key, _, _ in result.receipts[member]}
    left += copies.settle(cfg, [o for o in result.orphans if o.key not in mine])
    if left:  # the receipts stay live, so a re-run deletes what is left
        raise Refused(f"course {result.course_id}: the rows were removed, but {len(left)} copies could not be "
                      f"deleted from edx-val's storage, e.g. {left[0]}; run the undo again: it deletes every copy "
                      "the receipts name that no row holds, then marks them undone")
    kept = {skip.row.get("receipt") for skip in result.skip}
    for key, doc, tag in result.mints:  # the rows are gone: the LMS reads the contentstore for these blocks again
        mint.clear(cfg, doc)
        try:
            s3.put_json(cfg, key, dict(doc, undone_at=iso(now())), if_match=f'"{tag}"',
                        metadata=s3.tool_metadata(parse_course_id(doc["course_id"]), ""))
        except s3.PreconditionFailed:
            pass  # another undo closed it
    for member in result.courses:
        course = parse_course_id(member)
        for key, receipt, tag in result.receipts[member]:
            if key in kept:
                continue
            try:
                receipts.mark_undone(cfg, course, key, receipt, tag)
            except s3.PreconditionFailed:
                pass  # another undo or register marked it meanwhile
        copies.record(cfg, course)
