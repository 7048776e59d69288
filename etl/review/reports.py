"""Render diff reports for reviewers: a terminal summary, CSV, JSON, Markdown, or one HTML file.

The HTML report is a single self-contained file (no network assets): a header
with the course, the sides compared, counts per mark and the verdict, then a
table that sorts by column and filters by text and mark, and prints cleanly.
"""

import hashlib
import html
import json
import os
import re

import pandas as pd
from tabulate import tabulate

from etl.model.errors import UsageError
from etl.review.diff import COLUMNS


FORMATS = ("table", "csv", "json", "markdown", "html")
# What a reviewer reads first comes first; CSV and JSON keep the documented COLUMNS order.
HTML_COLUMNS = ["mark", "asset_name", "note", "length_a", "length_b", "md5_a", "md5_b", "parse_ok", "parse_error",
                "in_manifest", "asset_id"]
EXTENSIONS = {"csv": "csv", "json": "json", "markdown": "md", "html": "html"}


def _cell(value):
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA else value


def _rows(df):
    return [[_cell(v) for v in row] for row in df[COLUMNS].itertuples(index=False)]


def _header_lines(df):
    a = df.attrs
    counts = ", ".join(f"{n} {mark} {a['marks'][mark]}" for mark, n in a["counts"].items())
    verdict = a["verdict"] if a.get("ready") is None else ("READY: " if a["ready"] else "NOT READY: ") + a["verdict"]
    lines = [f"diff of {a['title']}", f"  a: {a['side_a']}"]
    if a.get("manifest"):
        lines.append(f"  manifest: {a['manifest']}")
    lines += [f"  b: {a['side_b']}", f"  {counts}", f"  {verdict}"]
    if a.get("parse_problems"):
        lines.append(f"  {a['parse_problems']} transcripts do not parse (migrated as stored; see parse_error)")
    return lines


def text(df):
    """Return the terminal summary: what was compared, the counts, the verdict, and every row that differs."""
    lines = _header_lines(df)
    different = df[df["mark"] != "="]
    if len(different):
        shown = different[["mark", "asset_name", "length_a", "length_b", "md5_a", "md5_b", "note"]]
        lines += ["", tabulate([[_cell(v) for v in r] for r in shown.itertuples(index=False)],
                               headers=list(shown.columns), tablefmt="simple")]
    lines.append(f"\n{int((df['mark'] == '=').sum())} identical")
    return "\n".join(lines)


def to_csv(df):
    """Return the rows as CSV, with the documented columns."""
    return df[COLUMNS].to_csv(index=False)


def to_json(df):
    """Return the attributes and rows as one JSON document."""
    rows = df[COLUMNS].astype(object).where(df[COLUMNS].notna(), None).to_dict("records")
    return json.dumps({"report": dict(df.attrs), "rows": rows}, indent=1, default=str, ensure_ascii=False)


def to_markdown(df):
    """Return a Markdown report: the header as a list, then the table."""
    head = _header_lines(df)
    out = [f"# Transcript diff: {df.attrs['title']}", ""] + [f"- {line.strip()}" for line in head[1:]] + [""]
    out.append(tabulate(_rows(df), headers=COLUMNS, tablefmt="github"))
    return "\n".join(out) + "\n"


_CSS = """
:root { --ok: #1b7f3b; --bad: #b42318; --muted: #667085; --line: #d0d5dd; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem; color: #101828; }
h1 { font-size: 1.4rem; margin: 0 0 .5rem; }
h1, .verdict, dd, .counts li { overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: 1rem 0; }
dt { color: var(--muted); } dd { margin: 0; word-break: break-all; }
.verdict { font-weight: 600; padding: .6rem .8rem; border-radius: 6px; border: 1px solid; }
.verdict.ready { color: var(--ok); border-color: var(--ok); background: #ecfdf3; }
.verdict.not-ready { color: var(--bad); border-color: var(--bad); background: #fef3f2; }
.verdict.info { color: #175cd3; border-color: #175cd3; background: #eff8ff; }
.counts { display: flex; gap: .5rem; flex-wrap: wrap; margin: 1rem 0; padding: 0; list-style: none; }
.counts li { border: 1px solid var(--line); border-radius: 6px; padding: .3rem .7rem; }
.controls { display: flex; gap: 1rem; align-items: center; margin: 1rem 0; }
input, select { font: inherit; padding: .3rem .5rem; }
.scroll { overflow-x: auto; }
table.data { border-collapse: collapse; width: 100%; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: .35rem .5rem; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
table.data th, table.data td.num, table.data td.mark, table.data td.short { overflow-wrap: normal; }
tr.not-ready td { background: #fef3f2; } tr.not-ready td:nth-child(2) { color: var(--bad); font-weight: 600; }
nav { margin-bottom: 1rem; }
.signoff { margin-top: 2rem; border-top: 1px solid var(--line); padding-top: 1rem; }
.signoff h2 { font-size: 1.1rem; margin: 0 0 .75rem; }
.signoff p { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-end; margin: 0; }
.blank { display: inline-block; min-width: 14em; border-bottom: 1px solid #101828; height: 1.6em; }
.blank.short { min-width: 8em; }
table.data th { position: sticky; top: 0; background: #f9fafb; cursor: pointer; user-select: none; }
table.data th[aria-sort=ascending]::after { content: " \\25B2"; } table.data th[aria-sort=descending]::after { content: " \\25BC"; }
td.mark { font-family: ui-monospace, monospace; font-weight: 700; text-align: center; }
tr[data-mark="="] td.mark { color: var(--ok); } tr:not([data-mark="="]) td.mark { color: var(--bad); }
td.hash { font-family: ui-monospace, monospace; font-size: 12px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
footer { color: var(--muted); margin-top: 1.5rem; font-size: 12px; }
@media print, (max-width: 900px) {
  body { margin: .5rem; font-size: 11px; } td.hash { font-size: 10px; }
  table.data th, table.data td { padding: .25rem .3rem; } table.data th { overflow-wrap: anywhere; }
}
@media print {
  .controls { display: none; } .scroll { overflow: visible; }
  table.data tr { break-inside: avoid; } table.data th { position: static; }
  tr[hidden] { display: table-row !important; } a { color: inherit; text-decoration: none; }
}
"""

_JS = """
(function () {
  var table = document.querySelector("table.data");
  var body = table.tBodies[0];
  var text = document.getElementById("filter"), mark = document.getElementById("mark");
  function apply() {
    var q = (text.value || "").toLowerCase(), m = mark ? mark.value : "", shown = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var ok = (!q || row.textContent.toLowerCase().indexOf(q) >= 0) && (!m || row.dataset.mark === m);
      row.hidden = !ok; if (ok) { shown += 1; }
    });
    document.getElementById("shown").textContent = shown + " of " + body.rows.length + " rows";
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
    th.addEventListener("click", function () {
      var desc = th.getAttribute("aria-sort") === "ascending";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", desc ? "descending" : "ascending");
      var numeric = th.dataset.type === "number";
      var rows = Array.prototype.slice.call(body.rows).sort(function (a, b) {
        var x = a.cells[index].dataset.value || a.cells[index].textContent;
        var y = b.cells[index].dataset.value || b.cells[index].textContent;
        var r = numeric ? (parseFloat(x || "-1") - parseFloat(y || "-1")) : x.localeCompare(y);
        return desc ? -r : r;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  text.addEventListener("input", apply);
  if (mark) { mark.addEventListener("change", apply); }
  apply();
  document.body.dataset.ready = "1";
}());
"""


def _page(title, header_html, columns, rows_html, marks=None, label="Mark", footer_html="",
          placeholder="asset, md5, note"):
    mark_filter = marks is not None
    marks = "".join(f'<option value="{html.escape(k)}">{html.escape(v if label != "Mark" else k + " " + v)}</option>'
                    for k, v in (marks or {}).items())
    select = (f'<label>{label} <select id="mark"><option value="">all</option>{marks}</select></label>'
              if mark_filter else "")
    heads = "".join(f'<th scope="col" data-type="{t}">{html.escape(c)}</th>' for c, t in columns)
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"{header_html}"
            f'<div class="controls"><label>Filter <input id="filter" type="search" '
            f'placeholder="{html.escape(placeholder)}"></label>{select}<span id="shown"></span></div>'
            f'<div class="scroll"><table class="data"><thead><tr>{heads}</tr></thead><tbody>{rows_html}</tbody>'
            f"</table></div>{footer_html}<footer>Generated by openedx-transcript-etl. Side a is the older or "
            f"source side, side b the newer or S3 side.</footer>"
            f"<script>{_JS}</script></body></html>\n")


def _verdict_html(attrs):
    if attrs.get("ready") is None:
        return f'<p class="verdict info">{html.escape(attrs["verdict"])}</p>'
    cls, word = ("ready", "Ready for Phase II") if attrs["ready"] else ("not-ready", "Not ready")
    return f'<p class="verdict {cls}">{word}: {html.escape(attrs["verdict"])}</p>'


def to_html(df, back=None):
    """Return the report as one self-contained HTML page; ``back`` links to the sign-off index."""
    a = df.attrs
    facts = [("course", a.get("course_id")), ("side a", a["side_a"]), ("manifest", a.get("manifest")),
             ("side b", a["side_b"]), ("parse problems", a.get("parse_problems")),
             ("generated", f"{a['generated_at']} by version {a['tool_version']}")]
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts if v not in (None, ""))
    counts = "".join(f'<li data-mark="{html.escape(k)}"><strong>{n}</strong> {html.escape(k)} '
                     f'{html.escape(a["marks"][k])}</li>' for k, n in a["counts"].items())
    nav = f'<nav><a href="{html.escape(back)}">&larr; sign-off index</a></nav>' if back else ""
    header = (f"<header>{nav}<h1>Transcript migration review: {html.escape(a['title'])}</h1>{_verdict_html(a)}"
              f'<ul class="counts">{counts}</ul><dl>{dl}</dl></header>')
    types = {"length_a": "number", "length_b": "number"}
    rows = []
    for row in df[HTML_COLUMNS].itertuples(index=False):
        cells = []
        for col, value in zip(HTML_COLUMNS, row):
            value = _cell(value)
            value = {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value
            cls = "mark" if col == "mark" else "hash" if col.startswith("md5") else "num" if col in types else ""
            data = f' data-value="{html.escape(str(value))}"' if col in types else ""
            cells.append(f'<td class="{cls}"{data}>{html.escape(str(value))}</td>')
        rows.append(f'<tr data-mark="{html.escape(row.mark)}">{"".join(cells)}</tr>')
    columns = [(c, types.get(c, "text")) for c in HTML_COLUMNS]
    return _page(f"Transcript review: {a['title']}", header, columns, "".join(rows), a["marks"])


RENDER = {"csv": to_csv, "json": to_json, "markdown": to_markdown, "html": to_html}


def render(df, fmt):
    """Return the report in ``fmt``: table, csv, json, markdown or html."""
    if fmt not in FORMATS:
        raise UsageError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    return text(df) if fmt == "table" else RENDER[fmt](df)


def file_name(course_id):
    """Return a file name for a course's report: readable, unique, safe on every file system."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", course_id).strip("_")[:80]
    return f"{readable}-{hashlib.sha1(course_id.encode()).hexdigest()[:8]}"


def write(path, content):
    """Write a report, creating its folder; return the path."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(content)
    return path


def index_html(summary, pages, facts):
    """Return the sign-off pack's index: what was compared, every course (not ready first), and a place to sign.

    ``facts`` are (label, value) pairs: the bucket, endpoint, prefixes, when and by which version.
    """
    ready = int(summary["ready"].sum())
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts)
    header = (f"<header><h1>Transcript migration sign-off: {len(summary)} courses</h1>"
              f'<p class="verdict {"ready" if ready == len(summary) else "not-ready"}">{ready} of {len(summary)} '
              f"courses ready for Phase II</p><dl>{dl}</dl></header>")
    columns = [("course", "text"), ("verdict", "text"), ("contentstore", "number"), ("S3", "number"),
               ("manifest", "number"), ("counts match", "text"), ("differences", "number"),
               ("parse problems", "number"), ("Phase II", "text"), ("report", "text")]
    rows = []
    for row in summary.itertuples(index=False):
        link = pages.get(row.course_id)
        cells = [row.course_id, "ready" if row.ready else row.verdict, row.contentstore_count, row.s3_count,
                 row.manifest_rows, "yes" if row.counts_match else "no", row.differences, row.parse_problems,
                 row.phase2]
        cells = ["" if pd.isna(c) else c for c in cells]  # a row without counts (unresolved) prints them empty
        kinds = ["", "", "num", "num", "num", "short", "num", "num", ""]
        tds = "".join(f'<td class="{k}" data-value="{html.escape(str(c))}">{html.escape(str(c))}</td>'
                      for k, c in zip(kinds, cells))
        tds += f'<td class="short"><a href="{html.escape(link)}">open</a></td>' if link else "<td></td>"
        highlight = "" if row.ready else ' class="not-ready"'
        rows.append(f'<tr data-mark="{"=" if row.ready else "*"}"{highlight}>{tds}</tr>')
    sign = ('<section class="signoff"><h2>Sign-off</h2><p><span>Reviewed by <span class="blank"></span></span>'
            '<span>Date <span class="blank short"></span></span><span>Signature <span class="blank"></span></span>'
            "</p></section>")
    return _page("Transcript migration sign-off", header, columns, "".join(rows),
                 {"*": "not ready", "=": "ready"}, label="Verdict", footer_html=sign,
                 placeholder="course, state, reason")
