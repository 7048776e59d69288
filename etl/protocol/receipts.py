"""Keep the receipts of Phase II registrations: which edx-val rows a course's registration created.

Open edX's plugin (``etl.openedx``) writes one receipt per registration of a
course, ``{state}/receipts/{course}/e{epoch}-{time}-{nonce}.json``, with the rows it
registered and what it found there before, conditionally (If-None-Match), before
its database transaction commits; an undo marks the receipt undone (If-Match).
Each row names the copy edx-val saved of its own (``storage_name``), so the
tool's objects stay free for ``rollback --force`` and ``vacuum``; the receipts
are the record of what was registered, and what an undo removes. A live receipt
of 0.6.0 (no ``mode``) registered in place: its rows name the epoch's own objects,
so ``rollback --force`` refuses the course and ``vacuum`` keeps the epoch until
it is undone.
"""

import secrets

from etl.model.layout import Layout
from etl.protocol.state import iso, now
from etl.store import pool, s3

UPLOAD = "upload"  # a receipt's mode since 0.7.0: edx-val saved copies; 0.6.0's rows named the live objects


def live(cfg, course):
    """Return [(key, receipt, ETag)] of the course's receipts that are not undone, oldest first."""
    keys = sorted(o["Key"] for o in s3.list_objects(cfg, Layout(cfg, course).receipts) if o["Key"].endswith(".json"))
    found = pool.run_all(cfg, lambda key: s3.get_json(cfg, key), keys)
    return [(key, doc, tag) for key, (doc, tag) in zip(keys, found) if doc and not doc.get("undone_at")]


def registered_elsewhere(cfg, course):
    """Return {(video id, language case-folded): {course ids}} that other courses' live receipts registered."""
    mine = Layout(cfg, course).receipts
    keys = [o["Key"] for o in s3.list_objects(cfg, f"{cfg.state_prefix}/receipts/")
            if o["Key"].endswith(".json") and not o["Key"].startswith(mine)]
    found = {}
    for doc in pool.run_all(cfg, lambda key: s3.get_json(cfg, key)[0], keys):
        if not doc or doc.get("undone_at"):
            continue
        for row in doc.get("registered") or []:
            found.setdefault((row["edx_video_id"], row["language"].casefold()), set()).add(doc["course_id"])
    return found


def in_place_epochs(cfg, course):
    """Return the epochs whose live objects rows registered in place (0.6.0, no copies) still name."""
    return {int(doc["epoch"]) for _, doc, _ in live(cfg, course) if doc.get("registered") and doc.get("mode") != UPLOAD}


def write(cfg, course, receipt):
    """Write a new receipt (never over another); return its key."""
    stamp = iso(now()).replace(":", "").replace("-", "").replace(".", "")
    key = f"{Layout(cfg, course).receipts}e{int(receipt['epoch'])}-{stamp}-{secrets.token_hex(4)}.json"
    s3.put_json(cfg, key, receipt, metadata=s3.tool_metadata(course, receipt.get("run_id") or ""), if_none_match=True)
    return key


def mark_undone(cfg, course, key, receipt, tag):
    """Mark a receipt undone, if it is still the one read (If-Match)."""
    s3.put_json(cfg, key, dict(receipt, undone_at=iso(now())), metadata=s3.tool_metadata(course, receipt.get("run_id")
                                                                                          or ""), if_match=f'"{tag}"')


def abandon(cfg, course, key):
    """Mark a receipt whose database transaction rolled back as undone, if it can be; it registered nothing."""
    doc, tag = s3.get_json(cfg, key)
    if doc is not None and not doc.get("undone_at"):
        try:
            s3.put_json(cfg, key, dict(doc, undone_at=iso(now()), undone_because="the database transaction rolled "
                                       "back"), metadata=s3.tool_metadata(course, ""), if_match=f'"{tag}"')
        except Exception:  # a live receipt whose rows are all gone: the next undo marks it
            pass


def how_to_undo(course):
    """Return the command that removes the course's registrations from edx-val, leaving every S3 object."""
    return f"./manage.py cms transcript_etl_register {course} --undo --commit"
