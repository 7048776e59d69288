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
from etl import reports
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
