"""Read a course's video blocks from the modulestore, published and draft, through its indexes only.

Split (``course-v1:`` courses): the course's row in ``modulestore.active_versions``
names its published and draft structures; each is one document of
``modulestore.structures`` (read by ``_id``) whose ``blocks`` hold every block's
settings in ``fields``, only those set. The old Mongo modulestore (``ORG/COURSE/RUN``
courses): one document per block in ``modulestore`` (read by its
``_id.tag, _id.org, _id.course, _id.category`` index), its settings in
``metadata``; a draft is a second document whose ``_id.revision`` is ``draft``.
Nothing is ever written.
"""

from dataclasses import dataclass

from etl.model.errors import StorageError
from etl.source.limits import read_limiter

VIDEO_TYPES = ("video", "videoalpha")
# The VideoBlock's defaults for the fields transcripts are resolved from: a field left at its default is not stored.
DEFAULTS = {"youtube_id_1_0": "3_yD_cEKoCk", "youtube_id_0_75": "", "youtube_id_1_25": "", "youtube_id_1_5": "",
            "sub": "", "transcripts": {}, "html5_sources": [], "edx_video_id": ""}
BRANCHES = ("published", "draft")


@dataclass(frozen=True)
class Video:
    """One video block as one branch stores it: its usage key and its settings, defaults filled in.

    ``version`` is split's version of the block (``edit_info.source_version``, else
    ``update_version``; None when unknown): a block whose draft and published
    versions are the same has no pending change, as Studio's ``has_changes`` judges it.
    """

    usage_key: str
    branch: str
    fields: dict
    version: str = None


def database(cfg):
    """Return the database the modulestore lives in: ``--modulestore-db``, else the contentstore's."""
    db = cfg.require_contentstore()
    return db.client[cfg.modulestore_db] if cfg.modulestore_db else db


def videos(cfg, course, heads=None):
    """Return the course's video blocks in both branches, in a stable order.

    ``heads`` ({branch: structure id}) reads those structures of a split course
    instead of the ones its index names now.
    """
    db = database(cfg)
    try:
        found = _old_mongo(cfg, db, course) if course.deprecated else _split(cfg, db, course, heads)
    except Exception as exc:  # pymongo's errors: connection, auth, timeouts
        raise _failed(course, exc) from exc
    return sorted(found, key=lambda v: (v.usage_key, BRANCHES.index(v.branch)))


def _failed(course, exc):
    return StorageError(f"course {course}: reading the modulestore failed: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''}; check ETL_MONGO_URI and "
                        "--modulestore-db, then re-run")


def heads(cfg, course):
    """Return {branch: structure id} of a split course's published and draft branches ({} when it has none)."""
    read_limiter(cfg).acquire()
    try:
        index = database(cfg)["modulestore.active_versions"].find_one(
            {"org": course.org, "course": course.course, "run": course.run}, {"versions": 1})
    except Exception as exc:
        raise _failed(course, exc) from exc
    return branch_heads(index)


def branch_heads(index):
    """Return {branch: structure id} from a course's ``modulestore.active_versions`` document."""
    versions = (index or {}).get("versions") or {}
    return {branch: versions[f"{branch}-branch"] for branch in BRANCHES if versions.get(f"{branch}-branch")}


def _video(course, block_type, block_id, branch, fields, edit_info=None):
    usage = course.locator().make_usage_key(block_type, block_id)
    info = edit_info or {}
    version = info.get("source_version") or info.get("update_version")
    return Video(str(usage), branch, {**DEFAULTS, **{k: v for k, v in (fields or {}).items() if k in DEFAULTS}},
                 str(version) if version is not None else None)


def _split(cfg, db, course, wanted=None):
    wanted = heads(cfg, course) if wanted is None else wanted
    if not wanted:
        return []
    read_limiter(cfg).acquire()
    structures = {doc["_id"]: doc for doc in db["modulestore.structures"].find(
        {"_id": {"$in": list(wanted.values())}}, {"blocks": 1})}
    return [_video(course, block["block_type"], block["block_id"], branch, block.get("fields"), block.get("edit_info"))
            for branch, structure_id in wanted.items()
            for block in (structures.get(structure_id) or {}).get("blocks") or []
            if block.get("block_type") in VIDEO_TYPES]


def _old_mongo(cfg, db, course):
    docs = []
    for category in VIDEO_TYPES:  # one equality query each, on the index's four fields
        read_limiter(cfg).acquire()
        docs += db["modulestore"].find({"_id.tag": "i4x", "_id.org": course.org, "_id.course": course.course,
                                        "_id.category": category}, {"metadata": 1})
    published = {(d["_id"]["category"], d["_id"]["name"]): d for d in docs if d["_id"].get("revision") != "draft"}
    drafts = {(d["_id"]["category"], d["_id"]["name"]): d for d in docs if d["_id"].get("revision") == "draft"}
    # The draft branch is what Studio shows: a block's draft where it has one, else its published version.
    branches = {"published": published, "draft": {**published, **drafts}}
    return [_video(course, category, name, branch, doc.get("metadata"))
            for branch, blocks in branches.items() for (category, name), doc in blocks.items()]
