"""Keep the receipts of Phase II registrations: which edx-val rows, and which copies, a course's registration made.

Open edX's plugin (``etl.openedx``) writes one receipt per registration of a
course, ``{state}/receipts/{course}/e{epoch}-{time}-{nonce}.json``. A receipt is
the registration's claim on the copies it is about to make:

- it is written ``pending`` (If-None-Match) *before* the first upload, naming
  every copy by the name edx-val will keep it under, with its holder and a
  lease (``LEASE_SECONDS``, judged by S3's clock as a record's is);
- inside the database transaction, once every copy is read back, it moves to
  ``live`` (If-Match on the pending version), the last write before the
  database commits; a registration whose receipt moved meanwhile rolls back;
- a failure marks it undone (If-Match), after deleting its copies.

So every copy the plugin ever saved is named by a receipt first, and any later
register or undo deletes each copy a receipt names that no edx-val row holds,
once the receipt's holder is gone or its lease has run out: after a SIGKILL,
after a failed delete, after Studio replaced a row. Each row names the copy
edx-val saved of its own (``storage_name``), so the tool's objects stay free for
``rollback --force`` and ``vacuum``. A live receipt of 0.6.0 (no ``mode``)
registered in place: its rows name the epoch's own objects, so ``rollback
--force`` refuses the course and ``vacuum`` keeps the epoch until it is undone.
"""

import json
import secrets

from etl.model import lease
from etl.model.layout import Layout
from etl.protocol.state import iso, now
from etl.store import pool, s3

UPLOAD = "upload"  # a receipt's mode since 0.7.0: edx-val saved copies; 0.6.0's rows named the live objects
PENDING, LIVE = "pending", "live"
LEASE_SECONDS = 3600  # a registration holds its receipt this long: far more than uploads and a read-back take


def all_of(cfg, course):
    """Return [(key, receipt, ETag, age by S3's clock)] of every receipt of the course, oldest first."""
    keys = sorted(o["Key"] for o in s3.list_objects(cfg, Layout.of(cfg, course).receipts) if o["Key"].endswith(".json"))
    found = pool.run_all(cfg, lambda key: s3.fetch_aged(cfg, key), keys)
    return [(key, json.loads(data), tag, age) for key, (data, tag, _, age) in zip(keys, found) if data is not None]


def live(cfg, course):
    """Return [(key, receipt, ETag)] of the course's receipts that registered rows and are not undone, oldest first."""
    return [(key, doc, tag) for key, doc, tag, _ in all_of(cfg, course)
            if not doc.get("undone_at") and doc.get("state", LIVE) == LIVE]


def held(doc, age, clock=None):
    """Tell whether a receipt's registration may still be at work: its holder runs and its lease stands."""
    if doc.get("undone_at") or not doc.get("holder"):
        return False
    if lease.holder_gone(doc["holder"]):
        return False
    clock = clock or lease.LeaseClock()
    return age is None or clock.age(age) < int(doc.get("lease_seconds") or LEASE_SECONDS)


def registered_elsewhere(cfg, course):
    """Return {(video id, language case-folded): {course ids}} that other courses' live receipts registered."""
    mine = Layout.of(cfg, course).receipts
    keys = [o["Key"] for o in s3.list_objects(cfg, f"{cfg.state_prefix}/receipts/")
            if o["Key"].endswith(".json") and not o["Key"].startswith(mine)]
    found = {}
    for doc in pool.run_all(cfg, lambda key: s3.get_json(cfg, key)[0], keys):
        if not doc or doc.get("undone_at") or doc.get("state", LIVE) != LIVE:
            continue
        for row in doc.get("registered") or []:
            found.setdefault((row["edx_video_id"], row["language"].casefold()), set()).add(doc["course_id"])
    return found


def in_place_epochs(cfg, course):
    """Return the epochs whose live objects rows registered in place (0.6.0, no copies) still name."""
    return {int(doc["epoch"]) for _, doc, _ in live(cfg, course) if doc.get("registered") and doc.get("mode") != UPLOAD}


def write(cfg, course, receipt):
    """Write a new receipt (never over another); return (its key, its ETag)."""
    stamp = iso(now()).replace(":", "").replace("-", "").replace(".", "")
    key = f"{Layout.of(cfg, course).receipts}e{int(receipt['epoch'])}-{stamp}-{secrets.token_hex(4)}.json"
    tag = s3.put_json(cfg, key, receipt, metadata=s3.tool_metadata(course, receipt.get("run_id") or ""),
                      if_none_match=True)
    return key, tag


def pending(cfg, course, receipt):
    """Write a new receipt as the claim of a registration about to upload; return (its key, its ETag)."""
    return write(cfg, course, dict(receipt, state=PENDING, holder=lease.identity(), lease_seconds=LEASE_SECONDS))


def replace(cfg, course, key, receipt, tag):
    """Replace a receipt, if it is still the version read (If-Match); return the new ETag. PreconditionFailed if not."""
    return s3.put_json(cfg, key, receipt, metadata=s3.tool_metadata(course, receipt.get("run_id") or ""),
                       if_match=f'"{tag}"')


def mark_undone(cfg, course, key, receipt, tag, because=None):
    """Mark a receipt undone, if it is still the one read (If-Match)."""
    replace(cfg, course, key, dict(receipt, undone_at=iso(now()), **({"undone_because": because} if because else {})),
            tag)


def abandon(cfg, course, key, tag, because):
    """Mark a receipt whose registration did not commit undone, if it is still that version; return True if so."""
    doc, current = s3.get_json(cfg, key)
    if doc is None or doc.get("undone_at") or current != tag:
        return False
    try:
        mark_undone(cfg, course, key, doc, tag, because)
    except s3.PreconditionFailed:
        return False
    return True


def how_to_undo(course):
    """Return the command that removes the course's registrations from edx-val, leaving every S3 object."""
    return f"./manage.py cms transcript_etl_register {course} --undo --commit"
