"""Load diff reports in headless Chromium: they render their table and log no console errors.

Skipped when Chromium is not installed (Debian packages chromium and chromium-driver).
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

import etl
from etl.review import reports
from tests.conftest import COURSE, fill

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="Chromium is not installed (apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def chromium(path, *extra):
    """Return (DOM after scripts ran, console messages) for a local page."""
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, f"file://{path}"],
                             capture_output=True, text=True, timeout=120)
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    return run.stdout, console


def test_the_console_check_catches_a_script_error(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><body><script>notDefined();</script></body></html>")
    _, console = chromium(page, "--dump-dom")
    assert any("notDefined" in line for line in console)


def test_report_and_index_render_in_chromium_without_console_errors(cfg, contentstore, tmp_path):
    fill(contentstore)
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    df = etl.diff(cfg, COURSE)
    page = reports.write(str(tmp_path / "report.html"), reports.to_html(df))
    dom, console = chromium(page, "--dump-dom")
    assert console == []
    assert 'data-ready="1"' in dom  # the sort and filter script ran to its end
    assert len(re.findall(r'<tr data-mark="', dom)) == len(df)
    assert f"{len(df)} of {len(df)} rows" in dom
    summary = etl.diff_all(cfg, str(tmp_path / "pack"))
    dom, console = chromium(str(tmp_path / "pack" / "index.html"), "--dump-dom")
    assert console == [] and 'data-ready="1"' in dom and summary.loc[0, "report"] in dom
    pdf = tmp_path / "report.pdf"
    chromium(page, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert pdf.read_bytes().startswith(b"%PDF") and os.path.getsize(pdf) > 1000


# Appended to a copy of a page: list every cell (and the page) whose content is wider than its box.
OVERFLOW_CHECK = """<script>
(function () {
  var clipped = [];
  document.querySelectorAll("td, th, dd, dt, h1, .scroll, .verdict").forEach(function (el) {
    if (el.scrollWidth > el.clientWidth + 1) { clipped.push(el.tagName + " " + el.textContent.slice(0, 60)); }
  });
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    clipped.push("page " + document.documentElement.scrollWidth + " > " + window.innerWidth);
  }
  document.body.setAttribute("data-clipped", JSON.stringify(clipped));
}());
</script>"""

LONG = "course-v1:AVeryLongOrganisationNameForTesting+AnExtremelyLongCourseNumberThatGoesOnAndOn+2026_Spring_Term_A"


def clipped(page, width, tmp_path):
    probe = tmp_path / f"probe-{width}-{os.path.basename(page)}"
    probe.write_text(open(page, encoding="utf-8").read().replace("</body>", OVERFLOW_CHECK + "</body>"))
    dom, console = chromium(probe, "--dump-dom", f"--window-size={width},900")
    assert console == []
    found = re.search(r'data-clipped="([^"]*)"', dom)
    assert found, "the overflow check did not run"
    return found.group(1).replace("&quot;", '"')


def test_the_sign_off_pack_names_its_target_puts_not_ready_first_and_clips_nothing(cfg, contentstore, tmp_path):
    from etl.demo.sample import cues, save_asset, srt

    fill(contentstore, LONG)
    save_asset(contentstore, LONG, "A lecture transcript with a really very long descriptive file name-en.srt",
               srt(cues(3)))
    etl.extract(cfg, LONG)
    etl.promote(cfg, LONG)
    fill(contentstore, COURSE)  # never migrated: not ready
    save_asset(contentstore, "Lost/Course/x", "subs_orphan.srt.sjson", b"{}")  # old-style, no course: unresolved
    pack = tmp_path / "pack"
    summary = etl.diff_all(cfg, str(pack))
    assert list(summary["ready"]) == sorted(summary["ready"])  # not ready first
    assert summary["course_id"].str.startswith("unresolved:").any()
    assert int(summary["ready"].sum()) == 1 and len(summary) == 3
    index = (pack / "index.html").read_text()
    for fact in (cfg.bucket, cfg.s3_endpoint_url, cfg.live_prefix, cfg.staging_prefix, cfg.state_prefix,
                 etl.__version__, "Reviewed by", "Date", '<select id="mark">', "not ready"):
        assert fact in index, fact
    assert "1 of 3 courses ready" in index
    course_page = pack / summary.loc[summary["ready"], "report"].iloc[0]
    assert 'href="index.html"' in course_page.read_text()
    for page in (pack / "index.html", course_page):
        for width in (1280, 720):  # a laptop screen, and about the printable width of A4 or Letter
            assert clipped(page, width, tmp_path) == "[]", (page.name, width)
    shot = tmp_path / "index.png"
    chromium(pack / "index.html", f"--screenshot={shot}", "--window-size=1280,900")
    assert shot.read_bytes().startswith(b"\x89PNG")
    pdf = tmp_path / "index.pdf"
    chromium(pack / "index.html", f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert pdf.read_bytes().startswith(b"%PDF")
    if os.environ.get("ETL_KEEP_SCREENSHOTS"):  # for a person to look at
        shutil.copy(shot, os.environ["ETL_KEEP_SCREENSHOTS"])
