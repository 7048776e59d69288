"""Hand a committed course over to Open edX: which transcripts the LMS serves, from which live object.

For each video block of the course, in both branches, and each language it
offers, the asset the LMS would serve from the contentstore
(``etl.source.resolve``) is found in the committed epoch's manifest, and its
live object is read back: its MD5 must be the manifest's, and its bytes must
parse as the format the LMS reads it as. Then each (video, language) is judged
against the whole site (``etl.source.pairs``): a pair that a pending draft, or
another course sharing the video, would be served differently from edx-val
than from its contentstore is marked with why, and only the rest are ``ok``.
The rows are written beside the course's state as Parquet, for the Open edX
plugin (``etl.openedx``) to register; nothing else is written. Two deliberate
departures from the LMS are flags, off by default, and each row taken through
one says so (``difference``). The hand-off cannot see edx-val: it judges every
course as served from its contentstore, and the plugin judges again, against
edx-val as it is, before it registers anything.
"""

import hashlib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etl._version import __version__
from etl.model import manifest
from etl.model.errors import NotCommitted, StorageError
from etl.model.layout import Layout, parse_course_id
from etl.protocol import marker, phase2
from etl.protocol.known import refuse_unknown
from etl.protocol.state import iso, now
from etl.source import lms, modulestore, pairs, resolve, transcripts
from etl.source.site import Site
from etl.store import pool, s3

COLUMNS = ["course_id", "usage_key", "branch", "edx_video_id", "language", "asset_name", "live_key", "file_format",
           "md5", "status", "difference", "detail", "status_with_id"]
RESOLVED = ("ok", "no_edx_video_id", "asset_missing", "not_served", "format_differs", "parse_error")
STATUSES = RESOLVED + pairs.STATUSES
# The departures: English from the file ``transcripts['en']`` names, which the LMS never reads; and a file
# registered in the format its bytes parse as, where the LMS would read it as the other one and fail.
ENGLISH_FROM_TRANSCRIPTS, AS_PARSED = "english_from_transcripts", "as_parsed"
WHY = {  # what each status means for the operator, and what would change it
    "no_edx_video_id": "no edx_video_id: the contentstore keeps serving it",
    "asset_missing": "no committed asset by the names the LMS tries",
    "not_served": "the LMS does not serve this file; `handoff --english-from-transcripts` takes a named English one",
    "format_differs": "the LMS would read it as the other format and fail; `handoff --as-parsed` takes it as parsed",
    "parse_error": "the committed object does not parse, or differs from the manifest",
    **pairs.WHY,
}


def commit_identity(cfg, course, commit):
    """Return what a hand-off was made from: (epoch, manifest key, manifest sha256) of the commit, as text."""
    return (str(int(commit.get("epoch", 0))), marker.manifest_key(cfg, course, commit),
            commit.get("manifest_sha256") or "")


def handoff(cfg, course_id, english_from_transcripts=False, as_parsed=False, site=None):
    """Show which of a committed course's transcripts the LMS serves, from which live object, and write it.

    One row per (usage key, branch, language), with the asset the LMS would
    serve, its live key, its format, its MD5 and a status: ok, no_edx_video_id,
    asset_missing, not_served (the LMS never reads the file the video names for
    English), format_differs (the LMS would read the file as the other format
    and fail) or parse_error; or, for a pair edx-val's one row cannot hold
    without a learner noticing, why (``etl.source.pairs.STATUSES``), with the
    course and block it is about in ``detail``. A course that is not committed is
    refused. The rows go to ``{state}/handoff/{course}.parquet``.

    Args:
        course_id: course id, course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN.
        english_from_transcripts: serve English from the file ``transcripts['en']`` names when the LMS finds none.
        as_parsed: take a file whose bytes parse as the other format in that format.
        site: the site's video index (``etl.source.site.Site``), when the caller has read it; else read here.
    """
    course = parse_course_id(course_id)
    cfg.require_contentstore()
    layout = Layout.of(cfg, course)
    heads = {} if course.deprecated else modulestore.heads(cfg, course)  # what --mint-ids checks again before it writes
    seen, videos = pool.together(lambda: marker.read(cfg, course),
                                 lambda: modulestore.videos(cfg, course, None if course.deprecated else heads))
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
    rows = [_row(course, video, language, claimed, assets)
            for video in videos for language, claimed in resolve.languages(video.fields)]
    rows = [r for r in rows if r is not None]
    keys = sorted({r["live_key"] for r in rows if r["live_key"]})  # both branches, and reused videos, share objects
    found = dict(zip(keys, pool.run_all(cfg, lambda key: _read_back(cfg, key), keys)))
    for r in rows:
        if r["live_key"]:
            digest, (r["_parsed"], r["_error"]), _ = found[r["live_key"]]
            if digest != r["md5"]:
                r["_parsed"], r["_error"] = None, "the live object is missing or differs from the manifest"
        r["status"] = _status(r, english_from_transcripts, as_parsed)
        # What it would be with an id (``transcript_etl_register --mint-ids`` gives one): the same checks, the same flags.
        r["status_with_id"] = _status(dict(r, edx_video_id=r["edx_video_id"] or "-"), english_from_transcripts,
                                      as_parsed)
        r["difference"] = _difference(r, r["status_with_id"])
        r["file_format"] = r["_parsed"] or r["file_format"]
    held, shared = _judge(cfg, course, [r for r in rows if r["status"] == "ok"], found, site)
    df = pd.DataFrame(rows, columns=COLUMNS)
    meta = {"course_id": str(course), "epoch": epoch, "run_id": commit.get("run_id"), "videos": len(videos),
            "transcripts": len(assets), "manifest_key": key, "manifest_sha256": sha256,
            ENGLISH_FROM_TRANSCRIPTS: str(bool(english_from_transcripts)), AS_PARSED: str(bool(as_parsed)),
            "created_at": iso(now()), "tool_version": __version__,
            **{f"{branch}_head": str(version) for branch, version in heads.items()}}
    _write(cfg, course, layout.handoff, df, meta)
    df.attrs.update(meta)
    ok = df[df["status"] == "ok"].drop_duplicates(["edx_video_id", "language"])
    phase2.record(cfg, course, "handoff", {"epoch": int(epoch), "rows": len(df), "ok": len(ok),
                                           "why": _said(df), "held": held, "shared": shared})
    return df


def _judge(cfg, course, ok, found, site):
    """Mark the ok rows whose pair edx-val cannot take unnoticed; return ({status: pairs}, {other course: pairs})."""
    chosen, skips = pairs.choose(ok, [str(course)])
    for pair in chosen:
        pair.data = found[pair.row["live_key"]][2]
    if chosen:
        site = site or Site.read(cfg)
        _, more = pairs.judge(chosen, site, lms.NoVal(), {str(course)})
        skips += more
    held, shared = {}, {}
    for skip in skips:
        held[skip.status] = held.get(skip.status, 0) + 1
        same_case = skip.status == pairs.SAME_ROW
        for r in ok:
            if r["edx_video_id"] == skip.row["edx_video_id"] and (
                    r["language"] == skip.row["language"] if same_case
                    else r["language"].casefold() == skip.row["language"].casefold()):
                r["status"], r["detail"] = skip.status, skip.detail
        if skip.other:
            shared[skip.other] = shared.get(skip.other, 0) + 1
    return held, shared


def _row(course, video, language, claimed, assets):
    names = resolve.candidates(video.fields, language)
    found = next(((name, fmt) for name, fmt in names if name in assets.index), None)
    named = resolve.named(video.fields).get(language) if language == resolve.DEFAULT_LANGUAGE else None
    named = resolve.asset_name(named) if isinstance(named, str) else None
    difference = ""
    if found is None and named:  # a name the LMS never reads: served only with --english-from-transcripts
        difference, found = ENGLISH_FROM_TRANSCRIPTS, ((named, resolve.SRT) if named in assets.index else None)
    if found is None and not claimed and not named:
        return None  # English the video never named, with no asset behind it: nothing to serve, nothing missing
    asset, fmt = found or (named or (names[0][0] if names else None), None)
    return {"course_id": str(course), "usage_key": video.usage_key, "branch": video.branch,
            "edx_video_id": (video.fields.get("edx_video_id") or "").strip(), "language": language,
            "asset_name": asset, "live_key": assets.loc[asset, "live_key"] if found else None, "file_format": fmt,
            "md5": assets.loc[asset, "md5"] if found else None, "status": None,
            "difference": difference, "detail": "", "_parsed": None, "_error": None}


def _read_back(cfg, key):
    """Read a live object back; return (its MD5 or None when gone, (format, error) by what its bytes parse as, bytes)."""
    data, _ = s3.get(cfg, key)
    if data is None:
        return None, (None, None), None
    return hashlib.md5(data).hexdigest(), transcripts.sniff(data), data


def _status(row, english_from_transcripts, as_parsed):
    if not row["edx_video_id"]:
        return "no_edx_video_id"
    if not row["live_key"]:
        return "asset_missing"
    # The LMS fails on this asset when it finds it, or never reads the name (unless the flag says to).
    if row["file_format"] is None or (row["difference"] == ENGLISH_FROM_TRANSCRIPTS and not english_from_transcripts):
        return "not_served"
    if row["_error"] or not row["_parsed"]:
        return "parse_error"
    if row["_parsed"] != row["file_format"] and not as_parsed:
        return "format_differs"
    return "ok"


def _difference(row, status):
    """Return the departures from the LMS an ``ok`` row was taken through, comma-separated ('' for none)."""
    if status != "ok":
        return ""
    said = [row["difference"]] if row["difference"] else []
    return ",".join(said + ([AS_PARSED] if row["_parsed"] != row["file_format"] else []))


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
    key = Layout.of(cfg, course).handoff
    data, _ = s3.get(cfg, key)
    if data is None:
        return None, None
    df, meta = manifest.read_parquet(data)
    for column in ("detail", "status_with_id"):  # a hand-off of 0.7.0
        if column not in df.columns:
            df[column] = "" if column == "detail" else None
    return df, meta


def summary(df):
    """Return one line for a course's hand-off: its rows by status."""
    return f"{df.attrs.get('course_id')}: epoch {df.attrs.get('epoch')}, {len(df)} rows: {_said(df)}"


def _said(df):
    counts = df["status"].value_counts()
    said = ", ".join(f"{int(counts[s])} {s}" for s in STATUSES if s in counts)
    if not said:  # say which is missing: the transcripts, or the video blocks that would name them
        transcripts, videos = df.attrs.get("transcripts"), df.attrs.get("videos")
        said = ("no transcripts committed" if not transcripts
                else f"its {videos} video blocks name none of its {transcripts} transcripts" if videos
                else f"no video blocks name its {transcripts} committed transcripts")
    return said
