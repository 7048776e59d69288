"""Helpers shared by the tests: read S3 back, snapshot the contentstore."""

import copy
import hashlib

from etl.store import s3 as s3mod

def objects(cfg, prefix=""):
    """Return {key: bytes} for every object under ``prefix``."""
    return {o["Key"]: s3mod.get(cfg, o["Key"])[0] for o in s3mod.list_objects(cfg, prefix)}


def listing(cfg, prefix=""):
    """Return {key: etag} for every object under ``prefix``."""
    return {o["Key"]: o["ETag"] for o in s3mod.list_objects(cfg, prefix)}


def live_objects(cfg, layout):
    """Return {key: bytes} under a course's live prefix but its commit key, which must then hold no commit.

    The commit key is never deleted: after a failed or rolled-back run it holds
    that run's fence or release, which readers read as not committed.
    """
    import json

    found = objects(cfg, layout.live_root)
    held = found.pop(layout.marker, None)
    assert held is None or json.loads(held)["status"] in ("fenced", "released"), held
    return found


def snapshot(db):
    """Return every document of fs.files and fs.chunks, to prove the tool never writes to them."""
    return {name: sorted((copy.deepcopy(d) for d in db[name].find({})), key=lambda d: repr(d.get("_id")))
            for name in ("fs.files", "fs.chunks")}


def run_cli(cfg, contentstore, capsys, local, *args):
    """Run the CLI in-process on the test's bucket and contentstore, quietly; return (code, stdout, stderr)."""
    from etl.cli.main import main

    argv = list(args) + ["--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url,
                         "--manifest-dir", str(local), "--quiet"]
    try:
        main(argv, contentstore=contentstore)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def md5(data):
    return hashlib.md5(data).hexdigest()


def _course(course_id):
    from etl.model.layout import parse_course_id

    return parse_course_id(course_id) if isinstance(course_id, str) else course_id


def commit_doc(cfg, course_id):
    """Return the course's commit document (the reader contract), or None."""
    import etl

    return etl.committed(cfg, _course(course_id))


def live_prefix(cfg, course_id):
    """Return where the committed transcripts of a course are, following its commit as readers do."""
    from etl.protocol import marker

    return marker.transcripts_prefix(cfg, _course(course_id), commit_doc(cfg, course_id))


def live_manifest(cfg, course_id):
    """Return the key of a committed course's live manifest."""
    from etl.protocol import marker

    return marker.manifest_key(cfg, _course(course_id), commit_doc(cfg, course_id))


def live_key(cfg, course_id, name):
    """Return the live key of one committed transcript."""
    from etl.model.layout import quote_segment

    return live_prefix(cfg, course_id) + quote_segment(name)


def staged_epoch(cfg, course_id):
    """Return the epoch of a course's staged run, from its status record."""
    from etl.protocol import state

    return int(state.read(cfg, _course(course_id))[0]["staged_epoch"])


def staging_prefix(cfg, course_id):
    """Return the prefix of a course's staged run."""
    from etl.model.layout import Layout

    return Layout(cfg, _course(course_id)).staging_epoch(staged_epoch(cfg, course_id))


def assert_invariant(cfg, db, course_id):
    """A course the tool reports committed verifies byte for byte; any other course has nothing live."""
    import etl
    from etl.model.layout import Layout, parse_course_id, quote_segment
    from tests.batch import source_transcripts

    layout = Layout(cfg, parse_course_id(course_id))
    live = {k: v for k, v in objects(cfg, layout.live_root).items() if "/transcripts/" in k}
    rows = etl.status(cfg, course_id)
    if len(rows) and rows["state"].iloc[0] == "promoted":  # the marker decides, through the status table
        prefix = live_prefix(cfg, course_id)
        expected = {prefix + quote_segment(n): b for n, b in source_transcripts(db, course_id).items()}
        assert {k: v for k, v in live.items() if k.startswith(prefix)} == expected
        result = etl.verify(cfg, course_id)
        assert result.ok, result.problems
        return "committed"
    assert live == {}, f"not committed, yet live: {sorted(live)[:3]}"
    assert [k for k in listing(cfg, layout.live_root) if k.endswith(".parquet")] == []
    return "not committed"


def assert_finished_by_rerun(cfg, db, course_id):
    """An operator's re-run of migrate promotes the course: verified, byte-exact, one commit key, no staging."""
    import etl
    from etl.model.layout import Layout, parse_course_id

    summary = etl.migrate(cfg, [course_id], workers=1, retries=0)
    assert summary.ok and summary.courses["outcome"].iloc[0] in ("promoted", "skipped"), summary.text()
    assert assert_invariant(cfg, db, course_id) == "committed"
    layout = Layout(cfg, parse_course_id(course_id))
    assert listing(cfg, layout.staging_root) == {}
    assert [k for k in listing(cfg, layout.live_root) if k.endswith(".json")] == [layout.marker]
