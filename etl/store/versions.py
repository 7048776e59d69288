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


def purge(cfg, course, prefixes, dry_run=False):
    """Delete, by version id, every noncurrent version under ``prefixes`` that this tool wrote for ``course``.

    Whose versions: each one's own metadata must name the tool and the course
    (a HEAD of that version). A delete marker goes too, but only once no
    version is left at its key, so nobody else's version is ever uncovered.
    Return (versions deleted, delete markers deleted, versions kept because
    someone else wrote them); with ``dry_run``, (the "key@version" of each version
    and delete marker it would delete, 0, kept), deleting nothing.
    """
    found = [v for prefix in prefixes for v in list_versions(cfg, prefix)]
    versions = [v for v in found if not v["marker"] and not v["IsLatest"]]

    def drop(version):
        with s3.storage("HeadObject", cfg, version["Key"]):
            head = cfg.s3.head_object(Bucket=cfg.bucket, Key=version["Key"], VersionId=version["VersionId"])
        if not s3.written_by_tool(head, course):
            return False
        if dry_run:
            return True
        with s3.storage("DeleteObject", cfg, version["Key"]):
            cfg.s3.delete_object(Bucket=cfg.bucket, Key=version["Key"], VersionId=version["VersionId"])
        return True

    dropped = pool.run_all(cfg, drop, versions)
    kept = {v["Key"] for v, gone in zip(versions, dropped) if not gone}
    kept |= {v["Key"] for v in found if not v["marker"] and v["IsLatest"]}
    markers = [v for v in found if v["marker"] and v["Key"] not in kept]
    if dry_run:
        gone = [v for v, ok in zip(versions, dropped) if ok] + markers
        return [f"{v['Key']}@{v['VersionId']}" for v in gone], 0, sum(1 for ok in dropped if not ok)

    def unmark(version):
        with s3.storage("DeleteObject", cfg, version["Key"]):
            cfg.s3.delete_object(Bucket=cfg.bucket, Key=version["Key"], VersionId=version["VersionId"])

    pool.run_all(cfg, unmark, markers)
    return sum(dropped), len(markers), sum(1 for gone in dropped if not gone)
