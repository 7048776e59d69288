"""Build the Phase II sign-off pack: a diff report per course and an index, each course judged by verify."""

from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from etl._version import __version__
from etl.batch.migrate import select
from etl.model.errors import UsageError
from etl.model.layout import parse_course_id
from etl.protocol import phase2, state
from etl.review import reports, views
from etl.review.diff import course_diff
from etl.verify import verify


def diff_all(cfg, out_dir, fmt="html", courses="all", modulestore_db=None, workers=4):
    """Write one report per course into ``out_dir``, plus an index; return the index as a DataFrame.

    The index has one row per course: the verdict, contentstore, S3 and manifest
    counts, whether they match, the number of differences, parse problems, where
    the course is in Phase II (``etl.protocol.phase2``) and the report's file. In
    HTML it is the Phase II sign-off pack.
    """
    ids, unresolved = select(cfg, courses, modulestore_db)
    known = {}  # the status table's Phase II column, when it was read
    if courses == "all":
        table = views.status(cfg)
        ids = sorted(set(ids) | set(table["course_id"]))
        known = dict(zip(table["course_id"], table["phase2"]))
    ext = reports.EXTENSIONS.get(fmt)
    if ext is None:
        raise UsageError(f"--all writes files: choose --format csv, json, markdown or html, not {fmt!r}")

    def one(course_id):
        df = course_diff(cfg, course_id)
        verified = verify(cfg, course_id)  # readiness is verify's decision, for this pack and `report` alike
        course = parse_course_id(course_id)
        if df.attrs["ready"] and not verified.ok:
            df.attrs.update(ready=False, verdict=verified.problems[0])
        elif verified.ok and not df.attrs["ready"]:
            df.attrs.update(ready=False, verdict=f"verify passed, but the diff found {df.attrs['verdict']}")
        name = f"{reports.file_name(course_id)}.{ext}"
        page = reports.to_html(df, back=f"index.{ext}") if fmt == "html" else reports.render(df, fmt)
        reports.write(f"{out_dir}/{name}", page)
        a = df.attrs
        return {"course_id": course_id, "ready": a["ready"], "verdict": a["verdict"],
                "contentstore_count": a["contentstore_count"], "s3_count": a["s3_count"],
                "manifest_rows": a["manifest_rows"],
                "counts_match": a["contentstore_count"] == a["s3_count"] == a["manifest_rows"],
                "differences": int((df["mark"] != "=").sum()), "parse_problems": a["parse_problems"],
                "phase2": phase2.column(cfg, course, verified.epoch, known=known.get(course_id)), "report": name}

    with ThreadPoolExecutor(workers, thread_name_prefix="diff") as pool:
        rows = list(pool.map(one, ids))
    # Transcripts no course can claim were not migrated: each group is a row that is not ready.
    rows += [{"course_id": f"unresolved: {entry['what']}", "ready": False, "verdict": entry["reason"],
              "counts_match": False} for entry in unresolved]
    summary = pd.DataFrame(rows, columns=["course_id", "ready", "verdict", "contentstore_count", "s3_count",
                                          "manifest_rows", "counts_match", "differences", "parse_problems", "phase2",
                                          "report"])
    summary = summary.sort_values(["ready", "course_id"], ignore_index=True)  # not ready first
    for column in ("contentstore_count", "s3_count", "manifest_rows", "differences", "parse_problems"):
        summary[column] = pd.to_numeric(summary[column]).astype("Int64")
    if fmt == "html":
        pages = {c: r for c, r in zip(summary["course_id"], summary["report"]) if isinstance(r, str)}
        index = reports.index_html(summary, pages, facts(cfg))
    elif fmt == "json":
        index = summary.to_json(orient="records", indent=1)
    elif fmt == "csv":
        index = summary.to_csv(index=False)
    else:
        index = reports.tabulate(summary.values.tolist(), headers=list(summary.columns), tablefmt="github") + "\n"
    reports.write(f"{out_dir}/index.{ext}", index)
    return summary


def facts(cfg):
    """Return what a reviewer must know the pack was made from: bucket, endpoint, prefixes, time, version."""
    return [("bucket", cfg.bucket), ("S3 endpoint", cfg.s3_endpoint_url or "AWS S3"),
            ("prefixes", f"live {cfg.live_prefix}/, staging {cfg.staging_prefix}/, state {cfg.state_prefix}/"),
            ("contentstore", cfg.contentstore_label or getattr(cfg.contentstore, "name", "")),
            ("generated", f"{state.iso(state.now())} by openedx-transcript-etl {__version__}")]
