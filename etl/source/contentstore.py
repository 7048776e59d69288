"""Read a course's transcripts from the contentstore (GridFS bucket ``fs``). Never writes.

Assets are selected the way Open edX selects them (``query_for_course`` in
edx-platform): dotted-field queries on ``content_son`` for new-style courses and
on ``_id`` for old-style ones, so no query depends on the field order of a stored
dict. Bytes come from ``fs.chunks`` in batches and are checked against ``fs.files``.
"""

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

from bson.son import SON

from etl.model.errors import CorruptSource, EtlError, StorageError
from etl.source.limits import read_limiter


_FIELDS = {"_id": 1, "content_son": 1, "contentType": 1, "length": 1, "chunkSize": 1,
           "md5": 1, "custom_md5": 1, "uploadDate": 1}


@dataclass(frozen=True, slots=True)
class Asset:
    """One transcript's fs.files document, reduced to what the migration needs."""

    asset_id: str  # asset-v1:... for new-style courses, /c4x/ORG/COURSE/asset/NAME for old-style
    name: str
    content_type: Optional[str]
    length: int
    chunk_size: int
    stored_md5: Optional[str]  # fs.files md5 (pymongo 3) or custom_md5 (edx-platform), if any
    upload_date: Optional[datetime]
    file_id: Any  # the fs.files _id, as stored: a string, or a dict for old-style courses

    def identity(self):
        """Return what the source fingerprint covers: id, length, checksum and upload time."""
        upload = None
        if self.upload_date:  # BSON dates and the manifest keep milliseconds
            upload = self.upload_date.replace(microsecond=self.upload_date.microsecond // 1000 * 1000).isoformat()
        return [self.asset_id, self.length, self.stored_md5, upload]


def course_query(course, suffixes=None):
    """Return the fs.files query for a course's assets, optionally only names with a suffix."""
    prefix = "_id" if course.deprecated else "content_son"
    query = {f"{prefix}.tag": "c4x", f"{prefix}.org": course.org, f"{prefix}.course": course.course,
             f"{prefix}.category": "asset"}
    # Old-style assets carry no run: all runs of an old-style course share them.
    query[f"{prefix}.run"] = {"$exists": False} if course.deprecated else course.run
    if suffixes:
        pattern = "(" + "|".join(re.escape(s) for s in suffixes) + ")$"
        query[f"{prefix}.name"] = {"$regex": pattern, "$options": "i"}
    return query


def _utc(value):
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def find_transcripts(cfg, course):
    """Return the course's transcript assets, sorted by name; refuse duplicate names."""
    return _find(cfg, course, course_query(course, cfg.transcript_suffixes), cfg.transcript_suffixes)


def read_named(cfg, course, names):
    """Return {name: bytes} of the course's assets with these exact names, whatever their suffix, each checked.

    What the LMS reads when it looks an asset up by the name ``compute_location``
    gives it; a name no asset has is absent from the result.
    """
    names = sorted(set(names))
    if not names:
        return {}
    query = course_query(course)
    query[f"{'_id' if course.deprecated else 'content_son'}.name"] = {"$in": names}
    assets = _find(cfg, course, query)
    found = {asset.name: data for asset, data, _ in read_small(
        cfg, course, [a for a in assets if a.length <= cfg.multipart_bytes])}
    for asset in assets:
        if asset.length > cfg.multipart_bytes:
            buf = bytearray()
            read_stream(cfg, course, asset, buf.extend)
            found[asset.name] = bytes(buf)
    return found


def _find(cfg, course, query, suffixes=None):
    db = cfg.require_contentstore()
    # A fresh projection per query: a driver may edit it (mongomock does), and courses run in threads.
    # The cursor is read as it comes, in batches of 1,000 documents, so a large course's raw documents
    # are never all held at once (a driver's default batch is up to 16 MB: every file of most courses).
    cursor = db["fs.files"].find(query, dict(_FIELDS)).batch_size(1000)
    assets = {}
    for doc in _read(cfg, course, cursor, "fs.files"):
        fields = doc["_id"] if course.deprecated else doc.get("content_son", {})
        name = fields.get("name")
        if not isinstance(name, str) or (suffixes and not name.lower().endswith(suffixes)):
            continue
        if course.deprecated:
            asset_id = f"/c4x/{course.org}/{course.course}/asset/{name}"
        else:
            asset_id = doc["_id"] if isinstance(doc["_id"], str) else f"{course}:{name}"
        if name in assets:
            raise CorruptSource(f"course {course}: two contentstore assets are named {name!r}; "
                                "delete the stale one in Studio, then re-run")
        assets[name] = Asset(
            asset_id=asset_id, name=name, content_type=doc.get("contentType"),
            length=int(doc.get("length") or 0), chunk_size=int(doc.get("chunkSize") or 261120),
            stored_md5=doc.get("md5") or doc.get("custom_md5"),
            upload_date=_utc(doc.get("uploadDate")), file_id=doc["_id"])
    return [assets[name] for name in sorted(assets)]


def course_known(cfg, course):
    """Tell whether the modulestore or the contentstore knows ``course``, each with one index-served lookup.

    The modulestore is split's ``modulestore.active_versions`` (org, course, run)
    for new-style ids and the old ``modulestore`` for old-style ones, in
    ``cfg.modulestore_db`` or else the contentstore's database; the contentstore
    knows a course when it holds any asset of it.
    """
    db = cfg.require_contentstore()
    store = db.client[cfg.modulestore_db] if cfg.modulestore_db else db
    if course.deprecated:
        found = _first(cfg, course, store["modulestore"], {
            "_id.tag": "i4x", "_id.org": course.org, "_id.course": course.course, "_id.category": "course",
            "_id.name": course.run}, "modulestore")
    else:
        found = _first(cfg, course, store["modulestore.active_versions"],
                       {"org": course.org, "course": course.course, "run": course.run}, "modulestore.active_versions")
    return found or _first(cfg, course, db["fs.files"], course_query(course), "fs.files")


def _first(cfg, course, collection, query, name):
    return any(True for _ in _read(cfg, course, collection.find(query, {"_id": 1}).limit(1), name))


def fingerprint(identities):
    """Return a sha256 over assets' identities: what promote compares to detect edits."""
    rows = sorted(identities, key=lambda row: row[0])
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def changed_assets(before, after):
    """Name the assets added, removed or changed between two {asset_id: identity} maps."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(a for a in set(before) & set(after) if before[a] != after[a])
    return added, removed, changed


def _chunk_key(course, file_id):
    return file_id.get("name") if course.deprecated and isinstance(file_id, dict) else file_id


# The field order of an old-style asset _id as Open edX builds it (edx-platform's make_id_son).
ID_ORDER = ("category", "name", "course", "tag", "org", "revision", "run")


def chunk_ids(course, asset):
    """Return the ``files_id`` values an asset's chunks may carry, each an exact match for the (files_id, n) index.

    A new-style asset's id is a string. An old-style one is an embedded document,
    and MongoDB matches those field by field in order: Open edX's canonical order
    first, then the order stored in fs.files, when it differs.
    """
    if not (course.deprecated and isinstance(asset.file_id, dict)):
        return [asset.file_id]
    canonical = SON((key, asset.file_id[key]) for key in ID_ORDER if key in asset.file_id)
    stored = SON(asset.file_id.items())
    return [canonical] if list(canonical) == list(stored) else [canonical, stored]


def _chunks(cfg, course, assets, n_range=None):
    """Query fs.chunks for ``assets`` by exact ``files_id`` values, served by GridFS's (files_id, n) index."""
    db = cfg.require_contentstore()
    query = {"files_id": {"$in": [i for a in assets for i in chunk_ids(course, a)]}}
    if n_range is not None:
        query["n"] = {"$gte": n_range[0], "$lt": n_range[1]}
    return db["fs.chunks"].find(query, {"files_id": 1, "n": 1, "data": 1}).sort("n", 1)


class _Check:
    """Check one asset's chunks, in order, against its fs.files document."""

    def __init__(self, course, asset):
        self.course, self.asset = course, asset
        self.expected = math.ceil(asset.length / asset.chunk_size) if asset.length else 0
        self.next_n, self.size, self.md5 = 0, 0, hashlib.md5()

    def fail(self, what):
        raise CorruptSource(f"course {self.course}: asset {self.asset.name!r} is corrupt in the contentstore "
                            f"({what}); fix or re-upload it in Studio, then re-run")

    def add(self, n, data):
        data = bytes(data)
        if n != self.next_n:
            self.fail(f"chunk {self.next_n} of {self.expected} missing" if n > self.next_n
                      else f"chunk {n} duplicated")
        if n >= self.expected:
            self.fail(f"chunk {n} beyond the {self.expected} that length {self.asset.length} needs")
        want = self.asset.chunk_size if n < self.expected - 1 else self.asset.length - n * self.asset.chunk_size
        if len(data) != want:
            self.fail(f"chunk {n} has {len(data)} bytes, expected {want}")
        self.next_n, self.size = n + 1, self.size + len(data)
        self.md5.update(data)
        return data

    def finish(self):
        if self.next_n != self.expected:
            self.fail(f"chunk {self.next_n} of {self.expected} missing")
        digest = self.md5.hexdigest()
        if self.asset.stored_md5 and self.asset.stored_md5.lower() != digest:
            self.fail(f"md5 {digest} does not match fs.files md5 {self.asset.stored_md5}")
        return digest


def _batches(assets, max_bytes, max_count=500):
    batch, size = [], 0
    for asset in assets:
        if batch and (size + asset.length > max_bytes or len(batch) >= max_count):
            yield batch
            batch, size = [], 0
        batch.append(asset)
        size += asset.length
    if batch:
        yield batch


def read_small(cfg, course, assets, tolerant=False):
    """Yield (asset, bytes, md5) for assets, reading fs.chunks one batch query at a time.

    A corrupt asset raises CorruptSource, or with ``tolerant`` yields (asset, None, error)
    and the others are still read: what a review needs, never what a migration does.
    """
    for batch in _batches(assets, cfg.read_batch_bytes):
        found = {}
        for chunk in _read(cfg, course, _chunks(cfg, course, batch)):
            found.setdefault(_chunk_key(course, chunk["files_id"]), []).append(chunk)
        for asset in batch:  # an asset whose chunks were not found is refused as corrupt, by name
            check = _Check(course, asset)
            try:
                data = b"".join(check.add(c["n"], c["data"])
                                for c in found.pop(_chunk_key(course, asset.file_id), []))
                digest = check.finish()
            except CorruptSource as err:
                if not tolerant:
                    raise
                yield asset, None, err
                continue
            yield asset, data, digest


def scan(cfg, course, assets, tolerant=False):
    """Yield (asset, bytes, md5, error) for every asset, each checked against its fs.files document.

    Small assets are read in batches and their bytes returned; large ones (over
    ``multipart_bytes``) are streamed through and not kept, so their bytes are None.
    With ``tolerant`` a failing asset yields its error instead of raising.
    """
    small = [a for a in assets if a.length <= cfg.multipart_bytes]
    for asset, data, result in read_small(cfg, course, small, tolerant):
        yield (asset, None, None, result) if data is None else (asset, data, result, None)
    for asset in assets:
        if asset.length > cfg.multipart_bytes:
            try:
                yield asset, None, read_stream(cfg, course, asset, lambda chunk: None), None
            except EtlError as err:
                if not tolerant:
                    raise
                yield asset, None, None, err


STREAM_CHUNKS = 32  # chunks per query when streaming a large asset: about 8 MiB at GridFS's default size


def read_stream(cfg, course, asset, sink):
    """Feed a large asset's checked chunks to ``sink`` in order; return its md5.

    Chunks are fetched in ranges of ``n``, so memory stays bounded whatever the
    driver's cursor buffers; one last query finds stray chunks past the end.
    """
    check = _Check(course, asset)
    for start in range(0, check.expected + 1, STREAM_CHUNKS):
        end = start + STREAM_CHUNKS if start + STREAM_CHUNKS < check.expected else 2 ** 31
        chunks = list(_read(cfg, course, _chunks(cfg, course, [asset], (start, end))))
        for chunk in chunks:
            sink(check.add(chunk["n"], chunk["data"]))
        if end == 2 ** 31:
            break
    return check.finish()


def _read(cfg, course, cursor, collection="fs.chunks"):
    try:
        read_limiter(cfg).acquire()
        yield from cursor
    except EtlError:
        raise
    except Exception as exc:  # pymongo's errors: connection, auth, timeouts
        raise StorageError(f"course {course}: reading {collection} failed: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:200]}; check ETL_MONGO_URI and the network, "
                           "then re-run") from exc
