"""Keep each course's Phase II summary: its hand-off, its registration in edx-val, and the LMS's last check.

One JSON object per course, ``{state}/phase2/{course}.json``, holds three
sections, each written by the step that knows it: ``handoff`` (``python -m etl
handoff``), ``registered`` (the plugin's register and undo) and ``checked``
(``transcript_etl_check`` from the LMS). Each write replaces only its section,
conditionally on the object it read (If-Match, or If-None-Match for the first),
so ``status`` and ``report`` read one object per course to say where Phase II is.
"""

from etl.model.layout import Layout
from etl.protocol.state import iso, now
from etl.store import s3

_ATTEMPTS = 5


def read(cfg, course):
    """Return the course's Phase II summary ({} when nothing was handed off)."""
    doc, _ = s3.get_json(cfg, Layout.of(cfg, course).phase2)
    return doc or {}


def record(cfg, course, section, value):
    """Replace one section of the course's summary, re-reading it when another writer got there first."""
    key = Layout.of(cfg, course).phase2
    for attempt in range(_ATTEMPTS):
        doc, tag = s3.get_json(cfg, key)
        new = dict(doc or {}, course_id=str(course), updated_at=iso(now()), **{section: value})
        try:
            s3.put_json(cfg, key, new, metadata=s3.tool_metadata(course, ""), if_none_match=tag is None,
                        if_match=f'"{tag}"' if tag else None)
            return new
        except s3.PreconditionFailed:
            if attempt == _ATTEMPTS - 1:
                raise


def describe(course, doc, epoch):
    """Return the Phase II column for a course committed at ``epoch`` (None when not committed)."""
    if course.deprecated:
        return "nothing to register: old-style id (export, then import as course-v1)"
    handoff, registered, checked = doc.get("handoff"), doc.get("registered"), doc.get("checked")
    if registered and registered.get("rows"):
        rows = registered["rows"]
        said = f"registered e{registered['epoch']}, {rows} row{'' if rows == 1 else 's'}"
        if checked and checked.get("at", "") >= registered.get("at", ""):
            bad = checked.get("failed", 0)
            said += f"; checked {checked['at'][:10]}: " + (f"{bad} rows fail" if bad else "all serve")
        return said
    if epoch is None:
        return "not committed"
    if not handoff:
        return "not handed off"
    if str(handoff.get("epoch")) != str(epoch):
        return f"hand-off stale (e{handoff.get('epoch')}, committed e{epoch})"
    if not handoff.get("ok"):
        return f"nothing to register: {handoff.get('why') or 'no rows'}"
    held = handoff.get("held") or {}
    return f"handed off: {handoff['ok']} to register" + (
        "; held back: " + ", ".join(f"{n} {status}" for status, n in sorted(held.items())) if held else "")


def families(summaries):
    """Return the lines naming each course whose pairs shared videos hold back, and how to register them together.

    ``summaries`` is {course id: its summary}. None when no pair is held back by another course.
    """
    said = []
    for course_id, doc in sorted(summaries.items()):
        shared = (doc.get("handoff") or {}).get("shared") or {}
        if shared:
            said.append(f"{course_id} with " + ", ".join(f"{other} ({n} pair{'' if n == 1 else 's'})"
                                                         for other, n in sorted(shared.items())))
    if not said:
        return None
    return (f"shared videos hold back pairs of {len(said)} course(s): " + "; ".join(said) + ". Make the courses' "
            "transcripts agree in Studio, migrate and hand off each, then register each family together: "
            "`./manage.py cms transcript_etl_register COURSE --with-shared --commit`")


def column(cfg, course, epoch, known=None):
    """Return the Phase II column: ``known``, when the status table already said it, else from the summary."""
    return known or describe(course, read(cfg, course), epoch)


def unreachable(text):
    """Say whether a Phase II column means that Phase II cannot reach the course."""
    return text.startswith(("nothing to register", "not handed off", "hand-off stale"))
