"""Migrate the two real Open edX course exports in ../shared/data, loaded as Studio imports them."""

import json
import mimetypes
import os
import re

import pytest

import etl
from etl.model.layout import quote_segment
from etl.demo.sample import save_asset
from tests.helpers import live_prefix, objects

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
IGNORED = re.compile(r"(\.DS_Store|^\._.*|\.swp$)")  # edx-platform's ASSET_IGNORE_REGEX


def import_static(db, export, course_id):
    """Save every file of ``export/static`` as Studio's import does; return {asset name: bytes}."""
    root = os.path.join(DATA, export)
    if not os.path.isdir(root):
        pytest.skip(f"{export} is not in ../shared/data")
    with open(os.path.join(root, "assets.json")) as fh:
        policy = json.load(fh)
    saved = {}
    static = os.path.join(root, "static")
    for folder, _, files in sorted(os.walk(static)):
        for filename in sorted(files):
            if IGNORED.match(filename):
                continue
            path = os.path.join(folder, filename)
            name = os.path.relpath(path, static).replace("/", "_")
            with open(path, "rb") as fh:
                data = fh.read()
            content_type = (policy.get(name) or {}).get("contentType") or mimetypes.guess_type(filename)[0]
            save_asset(db, course_id, name, data, content_type)
            saved[name] = data
    return saved


@pytest.mark.parametrize("export, course_id, expected", [
    ("openedx-demo-course", "course-v1:OpenedX+DemoX+DemoCourse", 6),
    ("edx-demox-2015-export", "edX/DemoX/Demo_Course", 36),
])
def test_real_course_export_migrates_byte_exact(cfg, contentstore, export, course_id, expected):
    saved = import_static(contentstore, export, course_id)
    transcripts = {n: b for n, b in saved.items() if n.lower().endswith((".srt", ".sjson"))}
    assert len(transcripts) == expected and len(saved) > expected
    extracted = etl.extract(cfg, course_id)
    etl.promote(cfg, course_id)
    result = etl.verify(cfg, course_id)
    assert result.ok and result.live_count == expected, result.problems
    prefix = live_prefix(cfg, course_id)
    live = objects(cfg, prefix)
    assert live == {prefix + quote_segment(n): b for n, b in transcripts.items()}
    empty = [n for n, b in transcripts.items() if not b]
    assert extracted.parse_problems >= len(empty)
