"""Compare what a reviewer signs off: the contentstore, the manifest and the objects in S3.

``diff(cfg, course)`` compares three sides for one course: the contentstore now
(side a, the source), the manifest (live once promoted, else the staged run's)
and the objects in S3 (side b: live, or the staging run). ``diff(cfg, a, b)``
compares two manifests, a local path or ``s3://bucket/key`` each, older first.
Both return a DataFrame, one row per asset, with a mark in the style of
``rclone check --combined``; what was compared and the verdict are in ``df.attrs``.
"""

import re
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd

from etl._version import __version__
from etl.model import manifest
from etl.model.errors import StorageError, UsageError
from etl.model.layout import Layout, parse_course_id
from etl.protocol import marker as markers
from etl.protocol import state
from etl.protocol.known import refuse_unknown
from etl.source import contentstore, transcripts
from etl.store import pool, s3


MARKS = {"=": "identical", "+": "only in b", "-": "missing from b", "*": "differs", "!": "unreadable or error"}
COURSE_MARKS = dict(MARKS, **{"+": "only in S3", "-": "missing from S3"})
MANIFEST_MARKS = dict(MARKS, **{"+": "added in b", "-": "removed in b", "*": "changed", "=": "unchanged"})
COLUMNS = ["asset_name", "mark", "length_a", "length_b", "md5_a", "md5_b", "in_manifest", "parse_ok",
           "parse_error", "note", "asset_id"]
_MD5 = re.compile(r"^[0-9a-f]{32}$")


def diff(cfg, a, b=None):
    """Compare a course's contentstore, manifest and S3 objects; or, given two manifests, the two runs.

    Return a DataFrame with the columns ``COLUMNS``; ``df.attrs`` holds the title,
    the sides compared, the counts per mark and the verdict.
    """
    if b is None:
        return course_diff(cfg, a)
    return manifest_diff(cfg, a, b)


def _counts(df):
    return {mark: int((df["mark"] == mark).sum()) for mark in MARKS}


def _mark(a_present, b_present, error, same, manifest_ok):
    """Return the mark of each row: ! error, + only in b, - missing from b, * differs, = identical."""
    return np.select(
        [error, b_present & ~a_present, a_present & ~b_present, ~a_present & ~b_present, ~same | ~manifest_ok],
        ["!", "+", "-", "-", "*"], default="=")


def _source(cfg, course):
    """Return a DataFrame of the contentstore side, reading every transcript to checksum it."""
    assets = contentstore.find_transcripts(cfg, course)
    rows = []
    for asset, data, digest, failure in contentstore.scan(cfg, course, assets, tolerant=True):
        ok, error = transcripts.check(asset.name, data) if data is not None else (None, None)
        rows.append({"asset_name": asset.name, "asset_id": asset.asset_id, "length_a": asset.length,
                     "md5_a": digest, "error_a": None if failure is None else str(failure),
                     "parse_ok_a": ok, "parse_error_a": error})
    return pd.DataFrame(rows, columns=["asset_name", "asset_id", "length_a", "md5_a", "error_a", "parse_ok_a",
                                       "parse_error_a"])


def course_diff(cfg, course_id):
    """Compare one course's contentstore, manifest and S3 objects; see ``diff``."""
    course = parse_course_id(course_id)
    layout = Layout.of(cfg, course)
    marker, record = pool.together(lambda: markers.committed(cfg, course), lambda: state.read(cfg, course)[0])
    if marker is not None:
        run_id, where = marker.get("run_id"), "live"
        manifest_key, prefix = markers.manifest_key(cfg, course, marker), markers.transcripts_prefix(cfg, course, marker)
    elif record and record.get("state") in (state.STAGED, state.PROMOTING) and record.get("staged_epoch"):
        run_id, where, epoch = record["run_id"], "staged", int(record["staged_epoch"])
        manifest_key, prefix = layout.staging_manifest(epoch), layout.staging_epoch(epoch) + "transcripts/"
    else:  # nothing committed: nothing is live, whatever uncommitted leftovers an epoch holds
        run_id, where, manifest_key, prefix = None, "live", None, None
    a = _source(cfg, course)
    if record is None and marker is None and not len(a):
        refuse_unknown(cfg, [course_id])  # a misspelt id is not a course that is merely "not ready"
    data, _ = s3.get(cfg, manifest_key) if manifest_key else (None, None)
    m = manifest.from_bytes(data, manifest_key)[0] if data is not None else pd.DataFrame(
        columns=list(manifest.SCHEMA.names))
    m = m.rename(columns={"length": "length_m", "md5": "md5_m", "asset_id": "asset_id_m"})
    m["in_manifest"] = True
    listing = pd.DataFrame(list(s3.list_objects(cfg, prefix)) if prefix else [], columns=["Key", "ETag", "Size"])
    b = pd.DataFrame({"asset_name": [unquote(k[len(prefix):]) for k in listing["Key"]],
                      "length_b": listing["Size"], "etag_b": listing["ETag"]})

    for side in (a, m, b):  # an empty side has no dtype to infer; the key must agree
        side["asset_name"] = side["asset_name"].astype(object)
    df = a.merge(m[["asset_name", "asset_id_m", "length_m", "md5_m", "staged_etag", "in_manifest", "parse_ok",
                    "parse_error"]], on="asset_name", how="outer")
    df = df.merge(b, on="asset_name", how="outer")
    # A single-part ETag is the md5; a multipart one is matched through the manifest's staged ETag.
    plain = df["etag_b"].fillna("").str.match(_MD5)
    df["md5_b"] = np.where(plain, df["etag_b"],
                           np.where(df["etag_b"].notna() & (df["etag_b"] == df["staged_etag"]), df["md5_m"], None))
    # An ETag that does not match is read back: on SSE-KMS and SSE-C buckets ETags are not MD5s.
    keys = dict(zip(b["asset_name"], listing["Key"]))
    suspect = df.index[df["etag_b"].notna() & (df["md5_b"] != df["md5_a"].fillna(df["md5_m"]))]
    found = pool.run_all(cfg, lambda name: s3.md5_of(cfg, keys[name]), list(df.loc[suspect, "asset_name"]))
    df.loc[suspect, "md5_b"] = pd.Series(found, index=suspect, dtype=object)
    df["in_manifest"] = df["in_manifest"].eq(True)  # NaN (not in the manifest) is False; no downcast
    df["asset_id"] = df["asset_id"].fillna(df["asset_id_m"])
    df["parse_ok"] = df["parse_ok"].where(df["in_manifest"], df["parse_ok_a"])
    df["parse_error"] = df["parse_error"].where(df["in_manifest"], df["parse_error_a"])
    a_present, b_present = df["length_a"].notna(), df["length_b"].notna()
    error = df["error_a"].notna()
    same = (df["length_a"] == df["length_b"]) & (df["md5_a"] == df["md5_b"])
    manifest_ok = df["in_manifest"] & (df["length_m"] == df["length_a"]) & (df["md5_m"] == df["md5_a"])
    df["mark"] = _mark(a_present, b_present, error, same, manifest_ok)
    df["note"] = np.select(
        [error, ~a_present & ~b_present, ~a_present, ~b_present, ~same, ~df["in_manifest"], ~manifest_ok],
        [df["error_a"], "in the manifest only", "in S3, not in the contentstore",
         "in the contentstore, not in S3", "length or md5 differs between the contentstore and S3",
         "not in the manifest", "the manifest's length or md5 differs"], default="")
    df = _tidy(df)
    counts = _counts(df)
    problems = [f"{n} {COURSE_MARKS[k]}" for k, n in counts.items() if k != "=" and n]
    if marker is None:
        ready, reason = False, f"not promoted ({(record or {}).get('state') or 'never extracted'})"
    elif problems:
        ready, reason = False, ", ".join(problems)
    else:
        ready, reason = True, f"all {len(df)} transcripts identical in the contentstore, the manifest and S3"
    df.attrs.update({
        "kind": "course", "title": f"course {course}", "course_id": str(course), "run_id": run_id,
        "side_a": f"contentstore now (fs.files and fs.chunks, database {getattr(cfg.contentstore, 'name', '?')})",
        "manifest": f"s3://{cfg.bucket}/{manifest_key}" if manifest_key else "none",
        "side_b": f"s3://{cfg.bucket}/{prefix or layout.live_root} ({where}{', run ' + run_id if run_id else ''})",
        "counts": counts, "marks": COURSE_MARKS, "ready": ready, "verdict": reason, "parse_problems": int((df["parse_ok"] == False).sum()),  # noqa: E712
        "contentstore_count": int(a_present.sum()), "s3_count": int(b_present.sum()),
        "manifest_rows": int(df["in_manifest"].sum()), "generated_at": state.iso(state.now()),
        "tool_version": __version__})
    return df


def _tidy(df):
    """Keep the documented columns, lengths as whole numbers, worst marks first."""
    df = df[COLUMNS].copy()
    for column in ("length_a", "length_b"):
        df[column] = df[column].astype("Int64")
    return df.sort_values(["mark", "asset_name"], key=_mark_order, ignore_index=True)


def _mark_order(column):
    if column.name == "mark":
        return column.map({"!": 0, "*": 1, "-": 2, "+": 3, "=": 4})
    return column


def load_manifest(cfg, where):
    """Return (DataFrame, metadata) of a manifest given as a local path or ``s3://bucket/key``."""
    if str(where).startswith("s3://"):
        url = urlsplit(str(where))
        try:
            with s3.storage("GetObject", cfg, url.path.lstrip("/"), bucket=url.netloc):
                data = cfg.s3.get_object(Bucket=url.netloc, Key=url.path.lstrip("/"))["Body"].read()
        except StorageError as err:
            if s3.gone(err):
                raise UsageError(f"no manifest at {where}: there is no such key in bucket {url.netloc}; check "
                                 "the epoch and the prefix (`python -m etl status COURSE` names the committed "
                                 "epoch)") from None
            raise
    else:
        try:
            with open(where, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise UsageError(f"cannot read manifest {where}: {exc.strerror}") from None
    return manifest.from_bytes(data, str(where))


def manifest_diff(cfg, a, b):
    """Compare two manifests (a the older run, b the newer): added, removed, changed, unchanged."""
    (ma, meta_a), (mb, meta_b) = load_manifest(cfg, a), load_manifest(cfg, b)
    keep = ["asset_id", "asset_name", "length", "md5", "parse_ok", "parse_error"]
    df = ma[keep].merge(mb[keep], on="asset_id", how="outer", suffixes=("_a", "_b"), indicator=True)
    changed = (df["length_a"] != df["length_b"]) | (df["md5_a"] != df["md5_b"])
    df["mark"] = np.select([df["_merge"] == "right_only", df["_merge"] == "left_only", changed],
                           ["+", "-", "*"], default="=")
    df["asset_name"] = df["asset_name_b"].fillna(df["asset_name_a"])
    df["in_manifest"] = True
    df["parse_ok"] = df["parse_ok_b"].where(df["_merge"] != "left_only", df["parse_ok_a"])
    df["parse_error"] = df["parse_error_b"].where(df["_merge"] != "left_only", df["parse_error_a"])
    df["note"] = df["mark"].map({"+": "added in b", "-": "removed in b", "*": "changed", "=": ""})
    df = _tidy(df)
    counts = _counts(df)
    df.attrs.update({
        "kind": "manifests", "title": f"run {meta_a.get('run_id')} vs run {meta_b.get('run_id')}",
        "course_id": meta_b.get("course") or meta_a.get("course"), "run_id": meta_b.get("run_id"),
        "side_a": f"{a} (run {meta_a.get('run_id')}, course {meta_a.get('course')})", "manifest": "",
        "side_b": f"{b} (run {meta_b.get('run_id')}, course {meta_b.get('course')})", "counts": counts,
        "marks": MANIFEST_MARKS,
        "ready": None, "verdict": f"{counts['+']} added, {counts['-']} removed, {counts['*']} changed, "
                                  f"{counts['=']} unchanged",
        "parse_problems": int((df["parse_ok"] == False).sum()),  # noqa: E712
        "generated_at": state.iso(state.now()), "tool_version": __version__})
    return df
