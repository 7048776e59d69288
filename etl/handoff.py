"""Hand a committed course over to Open edX: which transcripts edx-val can serve from the live copy, in place.

For each video block of the course, in both branches, and each language it
offers, the asset edx-platform would serve (``etl.source.resolve``) is found in
the committed epoch's manifest, and its live object is read back: its MD5 must
be the manifest's, and its format is what its bytes parse as, never what its
name says. The rows are written beside the course's state as Parquet, for the
Open edX plugin (``etl.openedx``) to register; nothing else is written.
"""

import hashlib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etl._version import __version__
from etl.model import manifest
from etl.model.errors import NotCommitted, StorageError
from etl.model.layout import Layout, parse_course_id
from etl.protocol import marker
from etl.protocol.known import refuse_unknown
from etl.protocol.state import iso, now
from etl.source import modulestore, resolve, transcripts
from etl.store import pool, s3

COLUMNS = ["course_id", "usage_key", "branch", "edx_video_id", "language", "asset_name", "live_key", "storage_name",
           "file_format", "md5", "status"]
STATUSES = ("ok", "no_edx_video_id", "asset_missing", "name_too_long", "parse_error")
MAX_NAME = 255  # edx-val's VideoTranscript.transcript FileField: max_length 255
def storage_name(live_key, location):
    """Return ``live_key`` as a name in a storage rooted at ``location``, or None when it lies outside it."""
    location = (location or "").strip("/")
    if not location:
        return live_key
    return live_key[len(location) + 1:] if live_key.startswith(location + "/") else None


def commit_identity(cfg, course, commit):
    """Return what a hand-off was made from: (epoch, manifest key, manifest sha256) of the commit, as text."""
    return (str(int(commit.get("epoch", 0))), marker.manifest_key(cfg, course, commit),
            commit.get("manifest_sha256") or "")


def handoff(cfg, course_id, storage_location=""):
    """Show which of a committed course's transcripts edx-val can serve in place, and write that hand-off.

    One row per (usage key, branch, language), with the asset edx-platform
    would serve, its live key, its name under edx-val's storage ``location``
    (``storage_location``), its format as parsed, its MD5 and a status: ok,
    no_edx_video_id, asset_missing, name_too_long or parse_error. A course that
    is not committed is refused. The rows go to ``{state}/handoff/{course}.parquet``.

    Args:
        course_id: course id, course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN.
    """
    course = parse_course_id(course_id)
    cfg.require_contentstore()
    layout = Layout(cfg, course)
    seen, videos = pool.together(lambda: marker.read(cfg, course), lambda: modulestore.videos(cfg, course))
    commit = seen.commit
    if commit is None:
        refuse_unknown(cfg, [course_id])  # a misspelled id says so, with the closest one, rather than "migrate it"
        raise NotCommitted(f"course {course} is not committed, so there is nothing to hand over; run "
                           f"`python -m etl migrate {course}` first")
    epoch, key, sha256 = commit_identity(cfg, course, commit)
    data, _ = s3.get(cfg, key)
    if data is None:
        raise StorageError(f"course {course}: its committed manifest {key} is missing; run `python -m etl verify "
                           f"{course}`")
    assets = manifest.from_bytes(data, key)[0].set_index("asset_name")
    rows = [_row(course, video, language, claimed, assets, storage_location)
            for video in videos for language, claimed in resolve.languages(video.fields)]
    rows = [r for r in rows if r is not None]
    keys = sorted({r["live_key"] for r in rows if r["live_key"]})  # both branches, and reused videos, share objects
    found = dict(zip(keys, pool.run_all(cfg, lambda key: _read_back(cfg, key), keys)))
    for r in rows:
        if r["live_key"]:
            digest, (r["file_format"], r["_error"]) = found[r["live_key"]]
            if digest != r["md5"]:
                r["file_format"], r["_error"] = None, "the live object is missing or differs from the manifest"
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["status"] = [_status(r) for r in rows]
    meta = {"course_id": str(course), "epoch": epoch, "run_id": commit.get("run_id"), "videos": len(videos),
            "transcripts": len(assets),
            "manifest_key": key, "manifest_sha256": sha256,
            "storage_location": storage_location or "", "created_at": iso(now()), "tool_version": __version__}
    _write(cfg, course, layout.handoff, df, meta)
    df.attrs.update(meta)
    return df


def _row(course, video, language, claimed, assets, location):
    names = resolve.candidates(video.fields, language)
    asset = next((n for n in names if n in assets.index), None)
    if asset is None and not claimed:
        return None  # English the video never named, with no asset behind it: nothing to serve, nothing missing
    live_key = assets.loc[asset, "live_key"] if asset else None
    return {"course_id": str(course), "usage_key": video.usage_key, "branch": video.branch,
            "edx_video_id": (video.fields.get("edx_video_id") or "").strip(), "language": language,
            "asset_name": asset or (names[0] if names else None), "live_key": live_key,
            "storage_name": storage_name(live_key, location) if live_key else None, "file_format": None,
            "md5": assets.loc[asset, "md5"] if asset else None, "_error": None}


def _read_back(cfg, key):
    """Read a live object back; return (its MD5 or None when gone, (format, error) by what its bytes parse as)."""
    data, _ = s3.get(cfg, key)
    if data is None:
        return None, (None, None)
    return hashlib.md5(data).hexdigest(), transcripts.sniff(data)


def _status(row):
    if not row["edx_video_id"]:
        return "no_edx_video_id"
    if not row["live_key"]:
        return "asset_missing"
    if row["_error"] or not row["file_format"]:
        return "parse_error"
    if not row["storage_name"] or len(row["storage_name"]) > MAX_NAME:
        return "name_too_long"
    return "ok"


def _write(cfg, course, key, df, meta):
    """Write the hand-off, replacing the course's previous one only if it is still the one read (If-Match)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({f"etl.{k}": str(v) for k, v in meta.items()})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    head = s3.head(cfg, key)
    s3.put(cfg, key, sink.getvalue().to_pybytes(), metadata=s3.tool_metadata(course, meta["run_id"] or ""),
           if_none_match=head is None, if_match=f'"{s3.etag(head["ETag"])}"' if head else None,
           content_type=manifest.CONTENT_TYPE)


def read(cfg, course):
    """Return (DataFrame, metadata) of the course's hand-off, or (None, None) when it has none."""
    key = Layout(cfg, course).handoff
    data, _ = s3.get(cfg, key)
    if data is None:
        return None, None
    return manifest.read_parquet(data)


def summary(df):
    """Return one line for a course's hand-off: its rows by status."""
    counts = df["status"].value_counts()
    said = ", ".join(f"{int(counts[s])} {s}" for s in STATUSES if s in counts)
    if not said:  # say which is missing: the transcripts, or the video blocks that would name them
        transcripts, videos = df.attrs.get("transcripts"), df.attrs.get("videos")
        said = ("no transcripts committed" if not transcripts
                else f"its {videos} video blocks name none of its {transcripts} transcripts" if videos
                else f"no video blocks name its {transcripts} committed transcripts")
    return f"{df.attrs.get('course_id')}: epoch {df.attrs.get('epoch')}, {len(df)} rows: {said}"

