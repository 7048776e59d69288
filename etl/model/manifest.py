"""Write and read the Parquet manifest: one row per transcript, plus run metadata."""

import hashlib
import os
from collections import namedtuple

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from etl.model.errors import ReconcileError
from etl.model.layout import local_name


SCHEMA = pa.schema([
    ("course_id", pa.string()),
    ("asset_id", pa.string()),
    ("asset_name", pa.string()),
    ("language", pa.string()),
    ("format", pa.string()),
    ("content_type", pa.string()),
    ("length", pa.int64()),
    ("md5", pa.string()),            # of the bytes read and staged
    ("source_md5", pa.string()),     # fs.files md5/custom_md5, when the contentstore has one
    ("upload_date", pa.timestamp("ms", tz="UTC")),
    ("staged_key", pa.string()),
    ("staged_etag", pa.string()),    # S3's ETag of the staged object (multipart ETags differ from md5)
    ("live_key", pa.string()),
    ("parse_ok", pa.bool_()),
    ("parse_error", pa.string()),
    ("sha256", pa.string()),         # of the bytes staged, sent as ChecksumSHA256 (null for multipart uploads)
])
META_KEYS = ("course", "run_id", "source_fingerprint", "tool_version", "created_at")
ROW_GROUP = 4096  # rows Arrow converts and encodes at once: its working memory is one group's, whatever the course

CONTENT_TYPE = "application/vnd.apache.parquet"


# One manifest row, in SCHEMA's order; a tuple, so a large course stays small. sha256 is null for multipart uploads.
Row = namedtuple("Row", SCHEMA.names, defaults=(None,))


def to_bytes(rows, **meta):
    """Serialise manifest ``Row``s and run metadata (course, run_id, ...) to Parquet, a row group at a time."""
    schema = SCHEMA.with_metadata({f"etl.{k}": str(meta[k]) for k in META_KEYS})
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        if not rows:
            writer.write_table(schema.empty_table())
        for start in range(0, len(rows), ROW_GROUP):
            columns = zip(*rows[start:start + ROW_GROUP])
            writer.write_table(pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(columns, schema)],
                                                    schema=schema))
    return sink.getvalue().to_pybytes()


def relocate(data, live_keys):
    """Return manifest bytes with the ``live_key`` column replaced, rows and metadata unchanged.

    A staged run promoted by a later claim goes live under that claim's epoch.
    """
    table = pq.read_table(pa.BufferReader(data), use_threads=False)
    index = table.schema.get_field_index("live_key")
    table = table.set_column(index, table.schema.field(index), pa.array(list(live_keys), pa.string()))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP)
    return sink.getvalue().to_pybytes()


def from_bytes(data, where=""):
    """Return (DataFrame, metadata dict) from Parquet bytes."""
    try:
        return read_parquet(data)
    except (pa.ArrowException, OSError) as exc:
        raise ReconcileError(f"manifest {where} is not readable Parquet ({exc}); "
                             "roll the course back and extract it again") from exc


def read_parquet(data):
    """Return (DataFrame, its ``etl.`` metadata without the prefix) from a Parquet file the tool wrote."""
    table = pq.read_table(pa.BufferReader(data), use_threads=False)  # small files: no thread pool
    meta = {k.decode()[4:]: v.decode() for k, v in (table.schema.metadata or {}).items()
            if k.decode().startswith("etl.")}
    return table.to_pandas(use_threads=False), meta


def checksum(data):
    """Return the sha256 of manifest bytes, as recorded in the commit marker."""
    return hashlib.sha256(data).hexdigest()


def save_local(cfg, course, run_id, data):
    """Keep a local copy under ``cfg.manifest_dir``; return its path, or None when disabled ('').

    The copy is at ``{manifest_dir}/{bucket}/{course}/{run_id}.parquet``, so two
    buckets' manifests never mix, with the course's folder name bounded in bytes.
    """
    if not cfg.manifest_dir:
        return None
    folder = os.path.join(cfg.manifest_dir, cfg.bucket, local_name(course.segment))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{run_id}.parquet")
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def identities(df):
    """Return {asset_id: identity} from a manifest, matching ``Asset.identity``."""
    out = {}
    for row in df.itertuples(index=False):
        upload = None if pd.isna(row.upload_date) else row.upload_date.to_pydatetime().isoformat()
        source_md5 = None if pd.isna(row.source_md5) else row.source_md5
        out[row.asset_id] = [row.asset_id, int(row.length), source_md5, upload]
    return out
