from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etl.model import manifest

META = dict(course="course-v1:Org+Big+2026", run_id="r1", source_fingerprint="f" * 64, tool_version="0", created_at="t")


def row(i):
    return manifest.Row(
        course_id=META["course"], asset_id=f"asset-v1:Org+Big+2026+type@asset+block@v{i}.srt", asset_name=f"v{i}.srt",
        language=None if i % 3 else "en", format="srt", content_type="application/x-subrip", length=i,
        md5=f"{i:032x}", source_md5=None if i % 2 else f"{i:032x}",
        upload_date=datetime(2026, 1, 1, 0, 0, i % 60, i % 1000 * 1000, tzinfo=timezone.utc),
        staged_key=f"staging/r1/transcripts/v{i}.srt", staged_etag=f"{i:032x}", live_key=f"live/transcripts/v{i}.srt",
        parse_ok=None if i % 5 == 0 else i % 7 != 0, parse_error="bad cue" if i % 7 == 0 else None)


def test_a_large_manifest_is_written_in_row_groups_and_reads_back_whole_and_in_order():
    rows = [row(i) for i in range(2 * manifest.ROW_GROUP + 1)]
    data = manifest.to_bytes(rows, **META)
    assert pq.ParquetFile(pa.BufferReader(data)).num_row_groups == 3
    df, meta = manifest.from_bytes(data, "test")
    assert meta == {k: str(v) for k, v in META.items()}
    assert len(df) == len(rows) and list(df["asset_name"]) == [r.asset_name for r in rows]
    back = df.iloc[manifest.ROW_GROUP + 7]
    want = rows[manifest.ROW_GROUP + 7]
    error = None if pd.isna(back["parse_error"]) else back["parse_error"]
    assert (back["md5"], back["length"], error) == (want.md5, want.length, want.parse_error)
    assert back["upload_date"].to_pydatetime() == want.upload_date
    assert int(df["length"].sum()) == sum(r.length for r in rows)
    assert int((df["parse_ok"] == False).sum()) == sum(r.parse_ok is False for r in rows)  # noqa: E712
    assert df["source_md5"].isna().sum() == sum(r.source_md5 is None for r in rows)


def test_an_empty_course_has_a_readable_manifest_with_every_column():
    df, meta = manifest.from_bytes(manifest.to_bytes([], **META))
    assert len(df) == 0 and list(df.columns) == manifest.SCHEMA.names and meta["run_id"] == "r1"
