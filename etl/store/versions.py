"""The object versions a versioned bucket keeps of a course after its objects are deleted, and their purge."""

from etl.store import pool, s3


def list_versions(cfg, prefix):
    """Yield {Key, VersionId, IsLatest, marker} for every version and delete marker under ``prefix``."""
    paginator = cfg.s3.get_paginator("list_object_versions")
    with s3.storage("ListObjectVersions", cfg, prefix):
        for page in paginator.paginate(Bucket=cfg.bucket, Prefix=prefix):
            for v in page.get("Versions", []):
                yield {"Key": v["Key"], "VersionId": v["VersionId"], "IsLatest": v["IsLatest"], "marker": False}
            for m in page.get("DeleteMarkers", []):
                yield {"Key": m["Key"], "VersionId": m["VersionId"], "IsLatest": m["IsLatest"], "marker": True}


def left_behind(cfg, prefixes):
    """Return (noncurrent versions, delete markers) under ``prefixes``: what a versioned bucket keeps."""
    found = [v for prefix in prefixes for v in list_versions(cfg, prefix)]
    return sum(1 for v in found if not v["marker"] and not v["IsLatest"]), sum(1 for v in found if v["marker"])


def _purgeable(cfg, course, prefixes):
    """Return (every version found, the tool's own noncurrent versions, the delete markers that may go).

    Whose versions: each one's own metadata must name the tool and the course
    (a HEAD of that version). A delete marker may go only where no version is
    left under it that is current or someone else's, so nobody's version is
    ever uncovered.
    """
    found = [v for prefix in prefixes for v in list_versions(cfg, prefix)]
    noncurrent = [v for v in found if not v["marker"] and not v["IsLatest"]]

    def mine(version):
        with s3.storage("HeadObject", cfg, version["Key"]):
            head = cfg.s3.head_object(Bucket=cfg.bucket, Key=version["Key"], VersionId=version["VersionId"])
        return s3.written_by_tool(head, course)

    owned = [v for v, ok in zip(noncurrent, pool.run_all(cfg, mine, noncurrent)) if ok]
    kept = {v["Key"] for v in found if not v["marker"]} - {v["Key"] for v in owned}
    kept |= {v["Key"] for v in found if not v["marker"] and v["IsLatest"]}
    return found, owned, [v for v in found if v["marker"] and v["Key"] not in kept]


def _named(versions):
    return [f"{v['Key']}@{v['VersionId']}" for v in versions]


def purge(cfg, course, prefixes):
    """Delete, by version id, the tool's own noncurrent versions of the course under ``prefixes``, then the
    delete markers left with nothing under them; return the "key@version" of each one deleted, in that order."""
    _, owned, markers = _purgeable(cfg, course, prefixes)

    def drop(version):
        with s3.storage("DeleteObject", cfg, version["Key"]):
            cfg.s3.delete_object(Bucket=cfg.bucket, Key=version["Key"], VersionId=version["VersionId"])

    pool.run_all(cfg, drop, owned)
    pool.run_all(cfg, drop, markers)
    return _named(owned) + _named(markers)


def forecast(cfg, course, prefixes, deleting=(), marker=None):
    """Return the "key@version" a rollback's purge will delete, read before the rollback runs: exactly those.

    The purge after a rollback finds what is noncurrent now, plus what the
    rollback itself makes noncurrent: the current version of each key it deletes
    (``deleting``) and the delete marker that deletion leaves, and at the commit
    key (``marker``, when the rollback claims the course) the version that holds
    now, replaced by its fence, and its own fence, replaced by its release. Those
    a run has not made yet have no version id: they are named by what they are.
    """
    found, owned, markers = _purgeable(cfg, course, prefixes)
    current = {v["Key"]: v["VersionId"] for v in found if v["IsLatest"] and not v["marker"]}
    named = _named(owned)
    for key in deleting:
        named += [f"{key}@{current[key]}"] if key in current else []
    named += _named(markers)
    named += [f"{key}@(the delete marker deleting it leaves)" for key in deleting if key in current]
    if marker is not None:
        named += [f"{marker}@{current[marker]}"] if marker in current else []
        named += [f"{marker}@(this rollback's own fence, which its release replaces)"]
    return named
