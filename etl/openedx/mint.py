"""Give videos without an ``edx_video_id`` an id, as Studio does, so that Phase II reaches their transcripts.

The LMS asks edx-val only for a block that names an ``edx_video_id``; a video
without one is served from the contentstore forever. ``--mint-ids`` gives each
such block of a committed course that the hand-off found serving a transcript
a new id (an external Video in edx-val, as Studio's own transcript upload makes
one), written through the modulestore (``etl.openedx.modulestore``) in each
branch the block is in, the same id in both (a block with no pending change:
its draft, then that block alone published, so Studio shows no change it did
not have), never publishing an author's pending changes; then its transcripts register like any other pair. A minted
id is new, so no other course shares it, and until edx-val has a row for it the
LMS answers exactly as before; a block whose draft resolves otherwise than its
published version is left alone.

A mint receipt, ``{state}/mints/{course}/e{epoch}-….json``, is written before
the first modulestore write and re-written around each one (the branch about to
be written, then the structure version written), conditionally, with a lease
like a registration receipt's. Any failure clears each id the run set, where the
block still holds it; a run that was killed leaves a receipt the next register
or undo finishes the same way. ``--undo`` clears an id only where the block
still holds the minted one, and names the blocks an author changed since. The
external Videos stay: edx-val has no API to delete one.
"""

import json
import secrets
import time
import uuid
from dataclasses import dataclass, field

from etl.model import lease
from etl.model.errors import EtlError, Refused, StorageError
from etl.model.layout import Layout, parse_course_id
from etl.openedx import modulestore
from etl.protocol import receipts
from etl.protocol.state import iso, now
from etl.source import modulestore as reader
from etl.source.modulestore import BRANCHES, Video
from etl.source.pairs import DRAFT_DIFFERS, DRAFT_ONLY, Skip
from etl.store import s3


@dataclass
class Mint:
    """One block to give an id: where it is, the id, and the languages edx-val would then serve for it."""

    course_id: str
    usage_key: str
    branches: list
    video_id: str
    settled: bool = False  # both branches, one version (no pending change): the draft written, then that block published
    languages: list = field(default_factory=list)


def plan(course_id, df, site):
    """Return (mints, their rows as a hand-off would give them with the id, skips) for a course's id-less blocks.

    ``df`` is the course's hand-off: a block is minted when its rows would be ok
    with an id (``status_with_id``) and its draft resolves as its published
    version does.
    """
    versions = {(v.usage_key, v.branch): v.version for v in site.blocks(course_id)
                if not (v.fields.get("edx_video_id") or "").strip()}
    blocks = set(versions)
    idless = df[(df["edx_video_id"] == "") & (df["status_with_id"] == "ok")]
    mints, rows, skips = [], [], []
    for usage_key, group in idless.groupby("usage_key", sort=True):
        records = group.to_dict("records")
        branches = [b for b in BRANCHES if (usage_key, b) in blocks]
        resolved = {b: {(r["language"], r["asset_name"], r["md5"], r["file_format"]) for r in records
                        if r["branch"] == b} for b in branches}
        if "published" not in branches:
            skips.append(Skip(records[0], DRAFT_ONLY, "never published: no learner is served it"))
            continue
        if "draft" in branches and resolved["draft"] != resolved["published"]:
            skips.append(Skip(records[0], DRAFT_DIFFERS, f"{usage_key}: its pending draft names other transcripts; "
                              "not minted"))
            continue
        video_id = str(uuid.uuid4())  # as edx-val's generate_video_id
        settled = branches == list(BRANCHES) and versions[(usage_key, "draft")] is not None and \
            versions[(usage_key, "draft")] == versions[(usage_key, "published")]
        mints.append(Mint(course_id, usage_key, branches, video_id, settled))
        rows += [dict(r, edx_video_id=video_id, status="ok") for r in records]
    return mints, rows, skips


class Minted:
    """The site as it will be once the mints are written: their blocks name their new ids, in every branch."""

    def __init__(self, site, mints):
        self.site, self.heads = site, site.heads
        self.mints = {m.video_id: m for m in mints}

    def courses(self, video_id):
        mint = self.mints.get(video_id)
        return [mint.course_id] if mint else self.site.courses(video_id)

    def blocks(self, course_id, video_id=None):
        mint = self.mints.get(video_id)
        if mint is None:
            return self.site.blocks(course_id, video_id)
        return [Video(v.usage_key, v.branch, dict(v.fields, edx_video_id=mint.video_id))
                for v in self.site.blocks(course_id) if v.usage_key == mint.usage_key]

    def assets(self, course_id):
        return self.site.assets(course_id)


class Claim:
    """A run's mint receipt: written before the first write, moved on around each, with the run's lease."""

    def __init__(self, cfg, course_id, epoch, mints):
        self.cfg, self.course = cfg, parse_course_id(course_id)
        self.doc = {"course_id": course_id, "epoch": epoch, "created_at": iso(now()), "undone_at": None,
                    "state": receipts.PENDING, "minted": [
                        {"usage_key": m.usage_key, "video_id": m.video_id, "branches": m.branches, "written": {},
                         "settled": m.settled, "languages": m.languages} for m in mints]}
        stamp = iso(now()).replace(":", "").replace("-", "").replace(".", "")
        self.key = f"{Layout.of(cfg, self.course).mints}e{int(epoch)}-{stamp}-{secrets.token_hex(4)}.json"
        self.tag = None

    def save(self, **changes):
        """Write the receipt's next version, If-Match on the last (If-None-Match the first); refuse a takeover."""
        self.doc.update(changes)
        if self.tag is None:
            self.doc.update(holder=lease.identity(), lease_seconds=receipts.LEASE_SECONDS)
        try:
            self.tag = s3.put_json(self.cfg, self.key, self.doc, metadata=s3.tool_metadata(self.course, ""),
                                   if_none_match=self.tag is None, if_match=f'"{self.tag}"' if self.tag else None)
        except s3.PreconditionFailed:
            raise Refused(f"course {self.course}: its mint receipt {self.key} was taken over (another register or "
                          "undo judged it abandoned and cleared its ids); this run stops; register again") from None


def write(cfg, mints, epochs, hook=None):
    """Write each mint's id, branch by branch, around receipt writes; return the Claims. On failure, clear them."""
    store = modulestore.adapter(cfg)
    deadline = time.monotonic() + receipts.LEASE_SECONDS - cfg.lease_margin()
    claims = {}
    for course_id in sorted({m.course_id for m in mints}):
        claim = Claim(cfg, course_id, epochs[course_id], [m for m in mints if m.course_id == course_id])
        claim.save()  # before the first modulestore write: a crash leaves a record
        claims[course_id] = claim
    try:
        for claim in claims.values():
            for entry in claim.doc["minted"]:
                for branch in (["draft", "published"] if entry["settled"] else entry["branches"]):
                    if time.monotonic() > deadline:
                        raise Refused(f"course {claim.course}: minting took longer than its receipt's lease; "
                                      "its ids are cleared; register again")
                    claim.save(writing={"usage_key": entry["usage_key"], "branch": branch})
                    course_id, usage_key = claim.doc["course_id"], entry["usage_key"]
                    entry["written"][branch] = (
                        store.publish(course_id, usage_key, entry["written"]["draft"])
                        if entry["settled"] and branch == "published" else
                        store.set_video_id(course_id, usage_key, branch, entry["video_id"]))
                    claim.save(writing=None)
                    if hook:
                        hook("minted")
    except BaseException as exc:
        for claim in claims.values():
            clear(cfg, claim.doc, store)
            close(claim, "the run failed before its transcripts were registered")
        if isinstance(exc, Exception) and not isinstance(exc, EtlError):
            raise StorageError(f"course {sorted(claims)[0]}: a modulestore write failed ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); every id this run set was "
                               "cleared and nothing was registered; check Studio's MongoDB, then register again") \
                from exc
        raise
    return claims


def clear(cfg, doc, store=None):
    """Clear each id a mint receipt names, in each branch, where the block still holds it; return the blocks left.

    A block whose id an author changed since is left as it is, and named.
    """
    store = store or modulestore.adapter(cfg)
    course = parse_course_id(doc["course_id"])
    left = []
    for entry in doc.get("minted") or []:
        blocks = {v.branch: v for v in reader.videos(cfg, course) if v.usage_key == entry["usage_key"]}
        if set(blocks) == set(BRANCHES) and blocks["draft"].version is not None and \
                blocks["draft"].version == blocks["published"].version and \
                (blocks["draft"].fields.get("edx_video_id") or "").strip() == entry["video_id"]:
            try:  # still no pending change: cleared in the draft, then that block published, as it was minted
                head = store.set_video_id(doc["course_id"], entry["usage_key"], "draft", "",
                                          expected=entry["video_id"])
                store.publish(doc["course_id"], entry["usage_key"], head)
                continue
            except modulestore.Changed:  # an author got there: each branch on its own, below
                pass
        for branch in entry["branches"]:
            current = video_id(cfg, course, entry["usage_key"], branch)
            if current == entry["video_id"]:
                try:
                    store.set_video_id(doc["course_id"], entry["usage_key"], branch, "", expected=entry["video_id"])
                    continue
                except modulestore.Changed as changed:  # an author got there between the read and the write
                    current = changed.found
            if current:
                left.append((entry["usage_key"], branch, current))
    return left


def video_id(cfg, course, usage_key, branch):
    """Return the ``edx_video_id`` a block holds in a branch now ('' for none), or None when it is not there."""
    for video in reader.videos(cfg, course):
        if video.usage_key == usage_key and video.branch == branch:
            return (video.fields.get("edx_video_id") or "").strip()
    return None


def close(claim, because):
    """Mark a run's mint receipt undone (its ids cleared), unless another run took it over and closes it itself."""
    try:
        claim.save(undone_at=iso(now()), undone_because=because)
    except Refused:
        pass  # whoever took it over closes it


def live(cfg, claims):
    """Mark each run's mint receipt live: its transcripts are registered."""
    for claim in claims.values():
        claim.save(state=receipts.LIVE)


def receipts_of(cfg, course):
    """Return [(key, receipt, ETag, age)] of a course's mint receipts, oldest first."""
    keys = sorted(o["Key"] for o in s3.list_objects(cfg, Layout.of(cfg, course).mints) if o["Key"].endswith(".json"))
    found = [(key, s3.fetch_aged(cfg, key)) for key in keys]
    return [(key, json.loads(data), tag, age) for key, (data, tag, _, age) in found if data is not None]


def settle(cfg, course_ids):
    """Finish what a killed or failed mint run left: clear the ids of each receipt nobody holds that is not live.

    Return the receipts closed.
    """
    closed = []
    for course_id in course_ids:
        course = parse_course_id(course_id)
        for key, doc, tag, age in receipts_of(cfg, course):
            if doc.get("undone_at") or doc.get("state") == receipts.LIVE or receipts.held(doc, age, cfg.clock):
                continue
            try:  # closed first, If-Match: a run that wakes up finds its receipt taken over and stops
                s3.put_json(cfg, key, dict(doc, undone_at=iso(now()), undone_because="the run stopped before its "
                            "transcripts were registered; its ids were cleared"),
                            metadata=s3.tool_metadata(course, ""), if_match=f'"{tag}"')
            except s3.PreconditionFailed:
                continue
            clear(cfg, doc)
            closed.append(key)
    return closed
