"""Build the Phase II sign-off pack: a diff report per course and an index, each course judged by verify."""

from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from . import reports, state
from .diff import course_diff
from .errors import UsageError
from .migrate import select
from .verify import verify


def diff_all(cfg, out_dir, fmt="html", courses="all", modulestore_db=None, workers=4):
    """Write one report per course into ``out_dir``, plus an index; return the index as a DataFrame.

    The index has one row per course: the verdict, contentstore, S3 and manifest
    counts, whether they match, the number of differences, parse problems and the
    report's file. In HTML it is the Phase II sign-off pack.
    """
    ids, _ = select(cfg, courses, modulestore_db)
    if courses == "all":
        table = state.table(cfg)
        ids = sorted(set(ids) | set(table["course_id"]))
    ext = reports.EXTENSIONS.get(fmt)
    if ext is None:
        raise UsageError(f"--all writes files: choose --format csv, json, markdown or html, not {fmt!r}")

    def one(course_id):
        df = course_diff(cfg, course_id)
        verified = verify(cfg, course_id)  # readiness is verify's decision, for this pack and `report` alike
        if df.attrs["ready"] and not verified.ok:
            df.attrs.update(ready=False, verdict=verified.problems[0])
        elif verified.ok and not df.attrs["ready"]:
            df.attrs.update(ready=False, verdict=f"verify passed, but the diff found {df.attrs['verdict']}")
        name = f"{reports.file_name(course_id)}.{ext}"
        reports.write(f"{out_dir}/{name}", reports.render(df, fmt))
        a = df.attrs
        return {"course_id": course_id, "ready": a["ready"], "verdict": a["verdict"],
                "contentstore_count": a["contentstore_count"], "s3_count": a["s3_count"],
                "manifest_rows": a["manifest_rows"],
                "counts_match": a["contentstore_count"] == a["s3_count"] == a["manifest_rows"],
                "differences": int((df["mark"] != "=").sum()), "parse_problems": a["parse_problems"], "report": name}

    with ThreadPoolExecutor(workers, thread_name_prefix="diff") as pool:
        summary = pd.DataFrame(list(pool.map(one, ids)),
                               columns=["course_id", "ready", "verdict", "contentstore_count", "s3_count",
                                        "manifest_rows", "counts_match", "differences", "parse_problems", "report"])
    if fmt == "html":
        index = reports.index_html(summary, dict(zip(summary["course_id"], summary["report"])))
    elif fmt == "json":
        index = summary.to_json(orient="records", indent=1)
    elif fmt == "csv":
        index = summary.to_csv(index=False)
    else:
        index = reports.tabulate(summary.values.tolist(), headers=list(summary.columns), tablefmt="github") + "\n"
    reports.write(f"{out_dir}/index.{ext}", index)
    return summary
