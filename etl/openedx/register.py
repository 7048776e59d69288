"""Register committed courses' transcripts in edx-val as Studio uploads them, all or none, invisible to learners.

Registering is turning Phase II on: once edx-val has a row for a (video,
language), the LMS serves it to every block that names the video, in every
course, and no longer reads the contentstore. So a pair is registered only when
no answer of the LMS changes anywhere on the site (``etl.source.pairs``): not in
another course that shares the video, not in an author's pending draft. Each such
pair is read from its live object (its MD5 must be the manifest's) and uploaded
through edx-val's own path (``create_or_update_video_transcript`` with
``file_data``), so edx-val's storage holds a copy of its own, named as Studio
names uploads. A course registers alone, or with ``with_shared`` together with
every course that shares a video with it (its *family*), in one database
transaction that re-checks every commit and every structure the plan read,
locks and re-checks each row, creates the external Video a known id lacks,
uploads, reads every row back through edx-val's API, and moves each course's
receipt from pending to live. The receipts name every copy before it is made
(``etl.protocol.receipts``), so nothing is ever orphaned. Nothing here overwrites
a VideoTranscript, writes the modulestore, or touches an object of the tool's.
"""

import functools
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from etl.handoff import WHY, commit_identity, read as read_handoff
from etl.model.errors import NotCommitted, Refused, StorageError, UsageError
from etl.model.layout import parse_course_id
from etl.openedx import copies, mint, val
from etl.protocol import marker, receipts
from etl.protocol.known import closest, refuse_unknown, table_ids
from etl.protocol.state import iso, now
from etl.source import pairs
from etl.source.modulestore import BRANCHES, heads as modulestore_heads
from etl.source.site import Site
from etl.store import pool, s3

DISAGREE = (pairs.SHARED_DIFFERS, pairs.SHARED_ADDS_LANGUAGE, pairs.LMS_DIFFERS)


@dataclass
class Plan:
    """What registering (or undoing) a course, or a family of courses, does: what to act on, and what is left why."""

    courses: list  # the course named first, then the courses registered with it
    identities: dict = field(default_factory=dict)  # course -> the commit its hand-off was made from
    act: list = field(default_factory=list)  # pairs.Pair to register, or receipt rows to remove
    skip: list = field(default_factory=list)  # pairs.Skip
    site: Any = None
    reach: list = field(default_factory=list)  # every course whose structures the plan read: checked again at commit
    receipts: dict = field(default_factory=dict)  # course -> [(key, receipt, ETag)] an undo acts on
    orphans: list = field(default_factory=list)  # copies.Orphans: what a commit deletes first
    mints: list = field(default_factory=list)  # mint.Mint: blocks given an id first (--mint-ids); for an undo, receipts
    heads: dict = field(default_factory=dict)  # course -> {branch: structure id} its hand-off was made from

    @property
    def course_id(self):
        return self.courses[0]


def refuse_old_style(course):
    """Refuse an ORG/COURSE/RUN course: no release that runs this plugin serves it to learners."""
    if course.deprecated:
        raise UsageError(f"course {course} has an old-style id (ORG/COURSE/RUN): no Open edX release this plugin "
                         "runs on serves it (learners lost it in Nutmeg, Studio in Olive); nothing was registered; "
                         "export it from Studio (`./manage.py cms export_olx`) and import it as a course-v1 course, "
                         "which gives its videos ids and copies their transcripts into edx-val")


def read_site(cfg):
    """Read the site's video index; refuse without a contentstore, since no shared video could be seen."""
    if cfg.contentstore is None:
        raise UsageError("registering reads every course that shares a video, from the modulestore and the "
                         "contentstore: set ETL_MONGO_URI (and ETL_MONGO_DB) as for `python -m etl handoff`")
    return Site.read(cfg)


def plan(cfg, course_id, with_shared=False, site=None, mint_ids=False):
    """Plan a course's registration (with ``with_shared``, its family's); refuse what cannot be registered safely.

    With ``mint_ids``, blocks without an ``edx_video_id`` that serve a transcript
    are given one too (``etl.openedx.mint``), and their pairs judged like any other.
    """
    course = parse_course_id(course_id)
    refuse_old_style(course)
    site = site or read_site(cfg)
    family = site.family(str(course)) if with_shared else [str(course)]
    result = Plan(family, site=site)
    rows, mints = [], []
    for member in family:
        identity, df, meta = _handoff(cfg, parse_course_id(member), None if member == str(course) else str(course))
        result.identities[member] = identity
        result.heads[member] = {b: meta.get(f"{b}_head") for b in BRANCHES if meta.get(f"{b}_head")}
        minted = set()
        if mint_ids:
            if df["status_with_id"].isna().all():
                raise Refused(f"course {member}: its hand-off was made by a version that does not say what would "
                              f"serve with an id; nothing was changed; run `python -m etl handoff {member}` again")
            more_mints, more_rows, skips = mint.plan(member, df, site)
            mints, rows, result.skip = mints + more_mints, rows + more_rows, result.skip + skips
            minted = {m.usage_key for m in more_mints} | {skip.row["usage_key"] for skip in skips}
        candidates = df["status"].isin(("ok",) + pairs.STATUSES)
        rows += df[candidates].to_dict("records")
        left = df[~candidates & ~df["usage_key"].isin(minted)]
        for row in left.drop_duplicates(["usage_key", "language", "status"]).to_dict("records"):
            result.skip.append(pairs.Skip(row, row["status"], WHY.get(row["status"], "")))
    chosen, skips = pairs.choose(rows, family)
    result.skip += skips
    _read_objects(cfg, family[0], chosen)
    elsewhere = functools.cache(lambda: receipts.registered_elsewhere(cfg, course))
    candidates = []
    for pair in chosen:
        collision = _collision(pair, family, elsewhere)
        if collision:
            result.skip.append(collision)
        else:
            candidates.append(pair)
    result.act, more = pairs.judge(candidates, mint.Minted(site, mints) if mints else site,
                                   pairs.Cached(val.View()), set(family))
    result.skip += more
    if with_shared:
        _refuse_disagreement(result)
    for pair in result.act:
        pair.row["create_video"] = not val.has_video(pair.video_id)
    serving = {}
    for pair in result.act:
        serving.setdefault(pair.video_id, []).append(pair.language)
    result.mints = [m for m in mints if m.video_id in serving]  # a block none of whose pairs may register keeps none
    for entry in result.mints:
        entry.languages = sorted(serving[entry.video_id])
    result.reach = sorted(set(family) | {c for p in result.act for c in site.courses(p.video_id)})
    result.orphans = copies.orphans(cfg, family)
    return result


def _handoff(cfg, course, named=None):
    """Return (commit identity, hand-off rows, hand-off metadata) of a committed course with a current hand-off."""
    refuse_old_style(course)
    seen, (df, meta) = pool.together(lambda: marker.read(cfg, course), lambda: read_handoff(cfg, course))
    member = f", which shares videos with {named}," if named else ""
    commit = seen.commit
    if commit is None:
        if not named:
            refuse_unknown(cfg, [str(course)])
        hint = closest(str(course), table_ids(cfg)) if not named else ""
        raise NotCommitted(f"course {course}{member} is not committed{hint}; nothing was registered; run `python -m "
                           f"etl migrate {course}`, then `python -m etl handoff {course}`")
    if df is None:
        raise UsageError(f"course {course}{member} has no hand-off; nothing was registered; run `python -m etl "
                         f"handoff {course}` first")
    current = commit_identity(cfg, course, commit)
    if (meta.get("epoch"), meta.get("manifest_key"), meta.get("manifest_sha256")) != current:
        raise Refused(f"course {course}{member}: its hand-off is stale (epoch {meta.get('epoch')}, the commit is "
                      f"epoch {current[0]}); nothing was registered; run `python -m etl handoff {course}` again")
    return current, df, meta


def _read_objects(cfg, course, chosen):
    found = pool.run_all(cfg, lambda p: s3.get(cfg, p.row["live_key"])[0], chosen)
    bad = [p.row["live_key"] for p, data in zip(chosen, found) if val.md5(data) != p.row["md5"]]
    if bad:
        raise Refused(f"course {course}: {len(bad)} live object(s) are missing or differ from the manifest, e.g. "
                      f"{bad[0]}; nothing was registered; run `python -m etl verify` on the course")
    for pair, data in zip(chosen, found):
        pair.data = data


def _collision(pair, family, elsewhere=None, lock=False):
    """Return the Skip for a pair edx-val already has a row for (any case), or None when it has none.

    The courses named are those edx-val links to the video and, with
    ``elsewhere``, those whose registration made the row.
    """
    existing = val.rows(pair.video_id, pair.language, lock=lock)
    if not existing:
        return None
    others = set(val.other_courses(pair.video_id, family[0]))
    if elsewhere:
        others |= elsewhere().get((pair.video_id, pair.language.casefold()), set())
    others = sorted(others - set(family))
    also = f"; the video is shared with {', '.join(others)}" if others else ""
    same = all(val.md5(val.served(r.video.edx_video_id, r.language_code)) == pair.row["md5"] for r in existing)
    codes = ", ".join(sorted(r.language_code for r in existing))
    return pairs.Skip(pair.row, "val_row_same" if same else "val_row_differs",
                      f"{codes}: {existing[0].transcript.name}{also}")


def _refuse_disagreement(result):
    """Refuse a family whose courses would not all be served the same: registering together cannot hide that."""
    for skip in result.skip:
        video = skip.row.get("edx_video_id")
        sharing = [c for c in result.courses if video in result.site.videos(c)]
        if skip.status in DISAGREE and len(sharing) > 1:
            raise Refused(f"courses {', '.join(result.courses)} share video {video} and disagree on "
                          f"{skip.row['language']}: {skip}; nothing was registered; make their transcripts agree "
                          "in Studio, migrate and hand off each again, then register them together")


def commit(cfg, result, hook=None):
    """Mint the planned ids, then register every planned pair in one database transaction, all or none.

    On any failure no row, no copy and no minted id is left. ``hook(point)`` is
    called at "minted" (after each branch written), "uploaded" and "before
    database commit", for tests.
    """
    copies.settle(cfg, result.orphans)  # what earlier registrations left goes first
    if mint.settle(cfg, result.courses):  # a stopped mint run's ids: cleared, so the plan is not the course's now
        raise Refused(f"course {result.course_id}: a stopped run had minted ids; they were cleared first, and "
                      "nothing else was changed; register again")
    written = {}
    if result.mints:
        _refuse_moved_since_handoff(cfg, result)
        written = mint.write(cfg, result.mints, {c: int(i[0]) for c, i in result.identities.items()}, hook)
        result.site.moved(sorted({m.course_id for m in result.mints}))  # its own writes: nobody else's edit
    try:
        _register(cfg, result, hook)
    except BaseException:
        for claim in written.values():
            mint.clear(cfg, claim.doc)
            mint.close(claim, "its transcripts were not registered")
        raise
    mint.live(cfg, written)


def finish_stopped(cfg, course_ids):
    """Finish what a stopped register or mint run left in these courses, before a plan reads them; return it."""
    found = copies.orphans(cfg, course_ids)
    copies.settle(cfg, found)
    return found, mint.settle(cfg, course_ids)


def _refuse_moved_since_handoff(cfg, result):
    """Refuse to mint in a course whose structure changed since its hand-off: the plan may not be the course's."""
    for course_id in sorted({m.course_id for m in result.mints}):
        now_heads = {b: str(v) for b, v in modulestore_heads(cfg, parse_course_id(course_id)).items()}
        if now_heads != result.heads.get(course_id):
            raise Refused(f"course {course_id}: its structure changed since the hand-off (an author's edit); no id "
                          f"was minted and nothing was registered; run `python -m etl handoff {course_id}`, then "
                          "register again")


def _register(cfg, result, hook=None):
    for pair in result.act:
        pair.row["file_name"], pair.row["storage_name"] = val.planned_name(pair.row["file_format"])
    claims = {}
    for member in result.courses:
        mine = [p for p in result.act if member in p.courses]
        if mine:
            doc = _receipt(result, member, mine)
            claims[member] = (*receipts.pending(cfg, parse_course_id(member), doc), doc)
    deadline = time.monotonic() + receipts.LEASE_SECONDS - cfg.lease_margin()
    saved, done = [], []
    try:
        with transaction.atomic():
            _recheck(cfg, result)  # rollback --force, a new epoch, or an author's edit since the plan: refuse
            for pair in result.act:
                collision = _collision(pair, result.courses, lock=True)  # an author may have uploaded one meanwhile
                if collision:
                    result.skip.append(collision)
                    continue
                if pair.row["create_video"] and not val.has_video(pair.video_id):
                    val.create_video(pair.video_id)
                _upload(result.course_id, pair, saved)
                done.append(pair)
            if hook:
                hook("uploaded")
            for pair in done:  # as the LMS will read it: through edx-val's API, from edx-val's storage
                if val.md5(val.served(pair.video_id, pair.language)) != pair.row["md5"]:
                    raise Refused(f"course {result.course_id}: edx-val serves other bytes than the committed object "
                                  f"for {pair.video_id} {pair.language} (or cannot read its copy "
                                  f"{pair.row['storage_name']}); nothing was registered; check edx-val's "
                                  "VIDEO_TRANSCRIPTS storage settings, then register again")
            _recheck(cfg, result)  # and again last, so only the database commit itself can race one
            if time.monotonic() > deadline:
                raise Refused(f"course {result.course_id}: the registration took longer than its receipt's lease "
                              f"({receipts.LEASE_SECONDS} s); nothing was registered; register again")
            result.act = done
            for member, (key, tag, doc) in list(claims.items()):
                live = dict(doc, state=receipts.LIVE, registered=[_receipt_row(p) for p in done if member in p.courses])
                try:
                    claims[member] = (key, receipts.replace(cfg, parse_course_id(member), key, live, tag), live)
                except s3.PreconditionFailed:
                    raise Refused(f"course {member}: its receipt {key} was taken over while registering (another "
                                  "register or undo judged it abandoned); nothing was registered; register again") \
                        from None
            if hook:
                hook("before database commit")
    except BaseException:
        left = val.discard(saved)
        for member, (key, tag, _) in claims.items():
            receipts.abandon(cfg, parse_course_id(member), key, tag, "the database transaction rolled back")
        if left:
            raise Refused(f"course {result.course_id}: nothing was registered, but {len(left)} copies could not be "
                          f"deleted from edx-val's storage, e.g. {left[0]}; the receipt names them, so the next "
                          "register or undo of the course deletes them") from None
        raise
    for member in result.courses:
        copies.record(cfg, parse_course_id(member))


def _receipt(result, member, mine):
    return {"course_id": member, "epoch": int(result.identities[member][0]), "created_at": iso(now()),
            "undone_at": None, "mode": receipts.UPLOAD, "family": result.courses,
            "registered": [_receipt_row(p) for p in mine],
            "skipped": [dict(edx_video_id=s.row.get("edx_video_id"), language=s.row.get("language"), reason=str(s))
                        for s in result.skip if s.row.get("course_id", member) == member]}


def _recheck(cfg, result):
    for member, identity in result.identities.items():
        course = parse_course_id(member)
        seen = marker.read(cfg, course)
        if seen.commit is None or commit_identity(cfg, course, seen.commit) != identity:
            raise Refused(f"course {member}: its commit changed since the plan; nothing was registered; run "
                          f"`python -m etl handoff {member}`, then register again")
    moved = result.site.moved(result.reach)
    if moved:
        raise Refused(f"course {moved[0]}: its structure changed since the plan (an author's edit); nothing was "
                      f"registered; register again, which plans from what the courses hold now")


def _upload(course_id, pair, saved):
    try:
        name = val.upload(pair.video_id, pair.language, pair.data, pair.row["file_format"], pair.row["file_name"])
    except Exception as exc:  # edx-val's storage refused, or its row did: the transaction rolls back
        saved.append(pair.row["storage_name"])  # the copy may be saved before the row failed; the name is ours alone
        raise StorageError(f"course {course_id}: edx-val could not save its copy of {pair.video_id} "
                           f"{pair.language} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); nothing "
                           "was registered; check edx-val's VIDEO_TRANSCRIPTS storage settings and credentials, then "
                           "register again") from exc
    saved.append(name)
    if name != pair.row["storage_name"]:  # the storage renamed it: the receipt names another
        raise StorageError(f"course {course_id}: edx-val's storage saved {pair.video_id} {pair.language} as {name}, "
                           f"not {pair.row['storage_name']}; nothing was registered; register again")


def _receipt_row(pair):
    said = {k: pair.row.get(k) for k in ("edx_video_id", "language", "file_format", "live_key", "md5", "storage_name",
                                         "usage_key", "difference")}
    return dict(said, created_video=bool(pair.row.get("create_video")), courses=pair.courses, shared_with=pair.shared)
