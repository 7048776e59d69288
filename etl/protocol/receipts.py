"""Keep the receipts of Phase II registrations: which edx-val rows point at which epoch's live objects.

Open edX's plugin (``etl.openedx``) writes one receipt per registration of a
course, ``{state}/receipts/{course}/e{epoch}-{time}-{nonce}.json``, with the rows it
registered and what it found there before, conditionally (If-None-Match), before
its database transaction commits; an undo marks the receipt undone (If-Match).
While a receipt is live, edx-val serves that epoch's objects in place, so
``rollback --force`` refuses the course and ``vacuum`` keeps the epoch.
"""

import secrets

from etl.model.layout import Layout
from etl.protocol.state import iso, now
from etl.store import pool, s3


def live(cfg, course):
    """Return [(key, receipt, ETag)] of the course's receipts that are not undone, oldest first."""
    keys = sorted(o["Key"] for o in s3.list_objects(cfg, Layout(cfg, course).receipts) if o["Key"].endswith(".json"))
    found = pool.run_all(cfg, lambda key: s3.get_json(cfg, key), keys)
    return [(key, doc, tag) for key, (doc, tag) in zip(keys, found) if doc and not doc.get("undone_at")]


def registered_epochs(cfg, course):
    """Return the epochs whose live objects edx-val serves for the course, by its live receipts."""
    return {int(doc["epoch"]) for _, doc, _ in live(cfg, course) if doc.get("registered")}


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


def how_to_undo(course):
    """Return the command that removes the course's registrations from edx-val, leaving every S3 object."""
    return f"./manage.py cms transcript_etl_register {course} --undo --commit"
