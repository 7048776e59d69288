import json
import os
from html.parser import HTMLParser

import pytest

import etl
from etl.review import reports
from etl.demo.sample import cues, save_asset, sjson, srt
from tests.test_contentstore import corrupt
from tests.conftest import COURSE, fill
from tests.helpers import live_key, live_manifest

REQUIRED = ["asset_name", "mark", "length_a", "length_b", "md5_a", "md5_b"]


def marks(df):
    return dict(zip(df["asset_name"], df["mark"]))


def test_a_clean_promoted_course_is_all_identical_and_ready(cfg, contentstore):
    fill(contentstore)
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    df = etl.diff(cfg, COURSE)
    assert set(REQUIRED) <= set(df.columns)
    assert set(df["mark"]) == {"="} and len(df) == 9
    assert df.attrs["ready"] and df.attrs["counts"]["="] == 9
    assert set(df.loc[df["parse_ok"] == False, "asset_name"]) == {  # noqa: E712
        "subs_empty.srt.sjson", "subs_bad_lists.srt.sjson", "subs_not_json.srt.sjson", "broken-en.srt"}


def test_every_mark_comes_out_of_a_constructed_case(cfg, contentstore):
    fill(contentstore)
    save_asset(contentstore, COURSE, "subs_will_corrupt.srt.sjson", sjson(cues(4)))
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    key = lambda name: live_key(cfg, COURSE, name)  # noqa: E731
    cfg.s3.put_object(Bucket=cfg.bucket, Key=key("stray-en.srt"), Body=srt(cues(1)))       # +
    cfg.s3.delete_object(Bucket=cfg.bucket, Key=key("subs_abc.srt.sjson"))                 # -
    cfg.s3.put_object(Bucket=cfg.bucket, Key=key("broken-en.srt"), Body=b"changed bytes")  # *
    corrupt(contentstore, COURSE, "subs_will_corrupt.srt.sjson", "missing chunk")                      # !
    df = etl.diff(cfg, COURSE)
    got = marks(df)
    assert got["stray-en.srt"] == "+" and got["subs_abc.srt.sjson"] == "-"
    assert got["broken-en.srt"] == "*" and got["subs_will_corrupt.srt.sjson"] == "!"
    assert sum(m == "=" for m in got.values()) == 7
    row = df.set_index("asset_name").loc["broken-en.srt"]
    assert row["length_b"] == len(b"changed bytes") and row["length_a"] != row["length_b"]
    assert "missing" in df.set_index("asset_name").loc["subs_will_corrupt.srt.sjson", "note"]
    assert not df.attrs["ready"] and df.attrs["counts"] == {"=": 7, "+": 1, "-": 1, "*": 1, "!": 1}


def test_a_staged_course_is_compared_against_its_staging_run(cfg, contentstore):
    fill(contentstore)
    run = etl.extract(cfg, COURSE).run_id
    save_asset(contentstore, COURSE, "subs_late.srt.sjson", sjson(cues(2)))
    df = etl.diff(cfg, COURSE)
    assert marks(df)["subs_late.srt.sjson"] == "-"
    assert run in df.attrs["side_b"] and "staged" in df.attrs["side_b"]
    assert not df.attrs["ready"] and "not promoted" in df.attrs["verdict"]


def two_runs(cfg, contentstore):
    fill(contentstore)
    first = etl.extract(cfg, COURSE)
    save_asset(contentstore, COURSE, "subs_abc.srt.sjson", sjson(cues(7)))           # changed
    save_asset(contentstore, COURSE, "added-en.srt", srt(cues(2)))                    # added
    import gridfs

    gridfs.GridFS(contentstore, "fs").delete("asset-v1:edX+DemoX+2024_T1+type@asset+block@broken-en.srt")  # removed
    second = etl.extract(cfg, COURSE)
    return first, second


def test_a_b_diff_of_two_runs_gives_exactly_the_changes(cfg, contentstore):
    first, second = two_runs(cfg, contentstore)
    df = etl.diff(cfg, first.local_manifest, second.local_manifest)
    changed = df[df["mark"] != "="]
    assert marks(changed) == {"subs_abc.srt.sjson": "*", "added-en.srt": "+", "broken-en.srt": "-"}
    assert df.attrs["counts"]["="] == 7
    row = df.set_index("asset_name").loc["subs_abc.srt.sjson"]
    assert row["length_a"] != row["length_b"] and row["md5_a"] != row["md5_b"]
    etl.promote(cfg, COURSE)
    live = f"s3://{cfg.bucket}/{live_manifest(cfg, COURSE)}"
    again = etl.diff(cfg, first.local_manifest, live)  # a local path against s3://
    assert marks(again[again["mark"] != "="]) == marks(changed)


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.text, self.tags, self._row = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr" and "data-mark" in dict(attrs):
            self._row = dict(attrs)["data-mark"]
            self.rows.append(self._row)

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_is_self_contained_and_has_the_right_counts(cfg, contentstore):
    first, second = two_runs(cfg, contentstore)
    df = etl.diff(cfg, COURSE)
    page = reports.to_html(df)
    parser = Collector()
    parser.feed(page)
    assert sorted(parser.rows) == sorted(df["mark"])
    text = " ".join(" ".join(parser.text).split())
    for mark, n in df.attrs["counts"].items():
        assert f"{n} {mark} {df.attrs['marks'][mark]}" in text
    assert "Not ready" in text and COURSE in text
    srcs = [a.get("src") or a.get("href") for t, a in parser.tags if t in ("script", "link", "img")]
    assert srcs == [None]  # one inline script, no external assets
    assert "http://" not in page and "https://" not in page


def test_every_format_renders_and_the_csv_has_the_documented_columns(cfg, contentstore, tmp_path):
    first, second = two_runs(cfg, contentstore)
    df = etl.diff(cfg, first.local_manifest, second.local_manifest)
    assert reports.render(df, "csv").splitlines()[0].startswith("asset_name,mark,length_a,length_b,md5_a,md5_b")
    assert json.loads(reports.render(df, "json"))["report"]["counts"]["+"] == 1
    assert "| asset_name" in reports.render(df, "markdown")
    summary = reports.render(df, "table")
    assert "1 added, 1 removed, 1 changed, 7 unchanged" in summary and "added-en.srt" in summary
    with pytest.raises(etl.UsageError):
        reports.render(df, "pdf")


def test_diff_all_writes_a_sign_off_pack_with_an_index(cfg, contentstore, tmp_path):
    from tests.batch import build_batch

    ids = build_batch(contentstore, 5)
    etl.migrate(cfg, ids[:3], workers=2)
    summary = etl.diff_all(cfg, str(tmp_path / "pack"))
    assert sorted(summary["course_id"]) == sorted(ids)
    assert int(summary["ready"].sum()) == 3
    files = sorted(os.listdir(tmp_path / "pack"))
    assert "index.html" in files and len(files) == 6
    parser = Collector()
    parser.feed((tmp_path / "pack" / "index.html").read_text())
    links = [a["href"] for t, a in parser.tags if t == "a"]
    assert sorted(links) == sorted(summary["report"]) and all((tmp_path / "pack" / h).exists() for h in links)
    assert "3 of 5 courses ready" in " ".join(parser.text)
    phases = {c: p for c, p in zip(summary["course_id"], summary["phase2"])}  # ready, but not yet in Open edX
    assert all(phases[c] == ("nothing to register: old-style id (export, then import as course-v1)" if "/" in c
                             else "not handed off") for c in ids[:3])
    assert all(phases[c] in ("not committed", "nothing to register: old-style id (export, then import as "
                             "course-v1)") for c in ids[3:])
    assert "Phase II" in parser.text and "not handed off" in parser.text


def test_diff_from_the_command_line_writes_reports_under_manifests(cfg, contentstore, tmp_path, capsys):
    from etl.cli.main import main

    fill(contentstore)
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    common = ["--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url, "--manifest-dir", str(tmp_path / "m")]
    main(["diff", COURSE, *common], contentstore=contentstore)
    out = capsys.readouterr().out
    assert "READY" in out and "9 identical" in out
    main(["diff", COURSE, "--format", "html", *common], contentstore=contentstore)
    out = capsys.readouterr().out
    path = out.split()[1].rstrip(":")
    assert path.startswith(str(tmp_path / "m" / "reports")) and path.endswith(".html") and os.path.exists(path)
    main(["diff", "--all", *common], contentstore=contentstore)
    assert "1 of 1 courses ready" in capsys.readouterr().out


def test_a_manifest_in_another_bucket_is_named_by_its_own_bucket(cfg):
    with pytest.raises(etl.StorageError, match=r"s3://etl-no-such-bucket-4711/some/manifest.parquet") as err:
        etl.diff(cfg, "s3://etl-no-such-bucket-4711/some/manifest.parquet", "s3://etl-no-such-bucket-4711/b")
    assert cfg.bucket not in str(err.value)
