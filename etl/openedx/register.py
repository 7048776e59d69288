"""Register a committed course's transcripts in edx-val as Studio uploads them, all or none; undo a registration.

Registering is turning Phase II on for a course: once edx-val has a row for a
(video, language), the LMS serves it and no longer reads the contentstore.
Each pair the hand-off (``etl.handoff``) found the LMS serving is read from its
live object (its MD5 must be the manifest's) and uploaded through edx-val's own
path (``create_or_update_video_transcript`` with ``file_data``), so edx-val's
storage holds a copy of its own, named as Studio names uploads. Whatever Studio
does later to that row or copy, the tool's committed epoch stays as it was.
One database transaction holds a course: it re-checks the commit, locks and
re-checks each row, creates the external Video a known id lacks, uploads, reads
every row back through edx-val's API and compares its bytes, and writes the
receipt. Any failure rolls the database back and deletes the copies it saved.
Nothing here overwrites a VideoTranscript, writes the modulestore, or touches
an object of the tool's.
"""

import functools
from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction

from etl.handoff import WHY, commit_identity, read as read_handoff
from etl.model.errors import NotCommitted, Refused, StorageError, UsageError
from etl.model.layout import parse_course_id
from etl.openedx import val
from etl.protocol import marker, phase2, receipts
from etl.protocol.known import closest, refuse_unknown, table_ids
from etl.protocol.state import iso, now
from etl.store import pool, s3


@dataclass
class Plan:
    """What registering (or undoing) one course does: the rows to act on, and each row skipped with its reason."""

    course_id: str
    epoch: int = 0
    identity: tuple = ()
    act: list = field(default_factory=list)  # dicts: edx_video_id, language, file_format, live_key, md5, ...
    skip: list = field(default_factory=list)  # (row, reason)
    receipt: tuple = ()  # for an undo: (key, receipt, ETag) of each live receipt


def refuse_old_style(course):
    """Refuse an ORG/COURSE/RUN course: no release that runs this plugin serves it to learners."""
    if course.deprecated:
        raise UsageError(f"course {course} has an old-style id (ORG/COURSE/RUN): no Open edX release this plugin "
                         "runs on serves it (learners lost it in Nutmeg, Studio in Olive); nothing was registered; "
                         "export it from Studio (`./manage.py cms export_olx`) and import it as a course-v1 course, "
                         "which gives its videos ids and copies their transcripts into edx-val")


def plan(cfg, course_id):
    """Plan a course's registration, refusing an old-style or uncommitted course, a stale hand-off and bad objects."""
    course = parse_course_id(course_id)
    refuse_old_style(course)
    (seen, (df, meta)) = pool.together(lambda: marker.read(cfg, course), lambda: read_handoff(cfg, course))
    commit = seen.commit
    if commit is None:
        if cfg.contentstore is not None:  # with the modulestore at hand, a misspelled id is told apart
            refuse_unknown(cfg, [course_id])
        hint = closest(str(course), table_ids(cfg))  # else the closest id the status table has, if any is close
        raise NotCommitted(f"course {course} is not committed{hint}; nothing was registered; run `python -m etl "
                           f"migrate {course}`, then `python -m etl handoff {course}`")
    if df is None:
        raise UsageError(f"course {course} has no hand-off; nothing was registered; run `python -m etl handoff "
                         f"{course}` first")
    current = commit_identity(cfg, course, commit)
    if (meta.get("epoch"), meta.get("manifest_key"), meta.get("manifest_sha256")) != current:
        raise Refused(f"course {course}: its hand-off is stale (epoch {meta.get('epoch')}, the commit is epoch "
                      f"{current[0]}); nothing was registered; run `python -m etl handoff {course}` again")
    result = Plan(str(course), int(current[0]), current)
    for row in df[df["status"] != "ok"].drop_duplicates(["usage_key", "language", "status"]).to_dict("records"):
        result.skip.append((row, f"{row['status']} ({WHY.get(row['status'], '')})"))
    _choose(result, df[df["status"] == "ok"].to_dict("records"))
    _read_objects(cfg, course, result.act)
    # Other courses' receipts, read once, and only at the first pair edx-val already has.
    shared = functools.cache(lambda: receipts.registered_elsewhere(cfg, course))
    for row in list(result.act):
        reason = _collision(row, str(course), shared=shared)
        if reason:
            result.act.remove(row)
            result.skip.append((row, reason))
        elif not val.has_video(row["edx_video_id"]):
            row["create_video"] = True
    return result


def _choose(result, ok):
    """Keep one row per (video, language), as edx-val keys them, moving every pair it must not decide to ``skip``.

    A pair no published block serves is draft-only: the LMS would show it at once.
    Published blocks that serve a pair from different bytes, and languages that
    differ only by case with different bytes, are reported, never decided.
    """
    pairs = defaultdict(list)
    for row in ok:
        pairs[(row["edx_video_id"], row["language"].casefold())].append(row)
    for _, rows in sorted(pairs.items()):
        published = [r for r in rows if r["branch"] == "published"]
        if not published:
            result.skip.append((rows[0], "draft_only"))
            continue
        languages = sorted({r["language"] for r in published})
        if len({r["md5"] for r in published}) > 1:
            why = (f"languages_differ_by_case ({', '.join(languages)}), with different bytes" if len(languages) > 1
                   else f"blocks_disagree ({', '.join(sorted({r['usage_key'] for r in published}))})")
            result.skip.extend((r, why) for r in published)
            continue
        chosen = min(published, key=lambda r: (r["language"], r["usage_key"]))
        for language in languages[1:]:  # the same bytes under another case: edx-val on MySQL keeps one row
            result.skip.append((next(r for r in published if r["language"] == language),
                                f"same_row_as {chosen['language']}"))
        result.act.append({k: chosen.get(k) for k in ("edx_video_id", "language", "file_format", "live_key", "md5",
                                                      "usage_key", "difference")})


def _read_objects(cfg, course, rows):
    found = pool.run_all(cfg, lambda r: s3.get(cfg, r["live_key"])[0], rows)
    bad = [r["live_key"] for r, data in zip(rows, found) if val.md5(data) != r["md5"]]
    if bad:
        raise Refused(f"course {course}: {len(bad)} live object(s) are missing or differ from the manifest, e.g. "
                      f"{bad[0]}; nothing was registered; run `python -m etl verify {course}`")
    for row, data in zip(rows, found):
        row["data"] = data


def _collision(row, course_id, lock=False, shared=None):
    """Return why a pair edx-val already has a row for is left alone, or None when it has none.

    The courses named are those edx-val links to the video and, with ``shared``,
    those whose registration made the row.
    """
    existing = val.rows(row["edx_video_id"], row["language"], lock=lock)
    if not existing:
        return None
    others = set(val.other_courses(row["edx_video_id"], course_id))
    if shared:
        others |= shared().get((row["edx_video_id"], row["language"].casefold()), set())
    others = sorted(others - {course_id})
    also = f"; the video is shared with {', '.join(others)}" if others else ""
    same = all(val.md5(val.served(r.video.edx_video_id, r.language_code)) == row["md5"] for r in existing)
    codes = ", ".join(sorted(r.language_code for r in existing))
    return f"{'val_row_same' if same else 'val_row_differs'} ({codes}: {existing[0].transcript.name}{also})"


def commit(cfg, result, hook=None):
    """Register every planned row in one database transaction; on any failure leave no row and no copy."""
    course = parse_course_id(result.course_id)
    saved, key = [], None
    try:
        with transaction.atomic():
            _recheck(cfg, course, result)  # rollback --force or a new epoch since the plan: refuse, not publish
            done = []
            for row in result.act:
                reason = _collision(row, str(course), lock=True)  # an author may have uploaded one meanwhile
                if reason:
                    result.skip.append((row, reason))
                    continue
                if row.get("create_video") and not val.has_video(row["edx_video_id"]):
                    val.create_video(row["edx_video_id"])
                row["storage_name"] = _upload(course, row, saved)
                done.append(row)
            if hook:
                hook("uploaded")
            for row in done:  # as the LMS will read it: through edx-val's API, from edx-val's storage
                if val.md5(val.served(row["edx_video_id"], row["language"])) != row["md5"]:
                    raise Refused(f"course {course}: edx-val serves other bytes than the committed object for "
                                  f"{row['edx_video_id']} {row['language']} (or cannot read its copy "
                                  f"{row['storage_name']}); nothing was registered; check edx-val's "
                                  "VIDEO_TRANSCRIPTS storage settings, then register again")
            result.act = done
            _recheck(cfg, course, result)  # and again last, so only the database commit itself can race one
            if done:
                key = receipts.write(cfg, course, {
                    "course_id": str(course), "epoch": result.epoch, "created_at": iso(now()), "undone_at": None,
                    "mode": receipts.UPLOAD,
                    "registered": [_receipt_row(r) for r in done],
                    "skipped": [dict(edx_video_id=r.get("edx_video_id"), language=r.get("language"), reason=why)
                                for r, why in result.skip]})
            if hook:
                hook("before database commit")
    except BaseException:
        left = val.discard(saved)
        if key:
            receipts.abandon(cfg, course, key)
        if left:
            raise Refused(f"course {course}: nothing was registered, but {len(left)} copies could not be deleted "
                          f"from edx-val's storage, e.g. {left[0]}; delete them by hand") from None
        raise
    if result.act:
        phase2.record(cfg, course, "registered", {"epoch": result.epoch, "rows": len(result.act), "at": iso(now()),
                                                  "receipt": key})


def _recheck(cfg, course, result):
    seen = marker.read(cfg, course)
    if seen.commit is None or commit_identity(cfg, course, seen.commit) != result.identity:
        raise Refused(f"course {course}: its commit changed since the plan; nothing was registered; run "
                      f"`python -m etl handoff {course}`, then register again")


def _upload(course, row, saved):
    try:
        name = val.upload(row["edx_video_id"], row["language"], row["data"], row["file_format"])
    except Exception as exc:  # edx-val's storage refused: the transaction rolls back
        raise StorageError(f"course {course}: edx-val could not save its copy of {row['edx_video_id']} "
                           f"{row['language']} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); nothing "
                           "was registered; check edx-val's VIDEO_TRANSCRIPTS storage settings and credentials, then "
                           "register again") from exc
    saved.append(name)
    return name


def _receipt_row(row):
    said = {k: row.get(k) for k in ("edx_video_id", "language", "file_format", "live_key", "md5", "storage_name",
                                    "usage_key", "difference")}
    return dict(said, created_video=bool(row.get("create_video")))


def plan_undo(cfg, course_id):
    """Plan removing exactly the rows of the course's live receipts that still hold what was registered."""
    course = parse_course_id(course_id)
    result = Plan(str(course))
    result.receipt = tuple(receipts.live(cfg, course))
    for _, receipt, _ in result.receipt:
        for row in receipt.get("registered") or []:
            current = val.current(row)
            if current is None:
                result.skip.append((row, "already gone"))
            elif current.transcript.name != row["storage_name"]:
                result.skip.append((row, f"replaced since registration (now {current.transcript.name}); left"))
            else:  # a 0.6.0 row registered in place names the tool's own object: only the row goes
                result.act.append(dict(row, pk=current.pk, copy=receipt.get("mode") == receipts.UPLOAD))
    return result


def commit_undo(cfg, result):
    """Delete the planned rows, then, once the database has committed, their copies; then mark the receipts undone."""
    course = parse_course_id(result.course_id)
    with transaction.atomic():
        val.rows_by_pk([row["pk"] for row in result.act]).delete()
    left = val.discard([row["storage_name"] for row in result.act if row["copy"]])
    if left:  # the receipts stay live, so a re-run deletes what is left
        raise Refused(f"course {course}: the rows were removed, but {len(left)} copies could not be deleted from "
                      f"edx-val's storage, e.g. {left[0]}; run the undo again")
    for key, receipt, tag in result.receipt:
        receipts.mark_undone(cfg, course, key, receipt, tag)
    phase2.record(cfg, course, "registered", None)

