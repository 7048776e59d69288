"""Plan a batch without writing anything: what migrate would do with each course (``--dry-run``)."""

import time

from etl.batch.summary import finish_row, outcome_row
from etl.extract import unknown_course
from etl.model import logs
from etl.model.errors import EtlError
from etl.model.layout import Layout, parse_course_id
from etl.protocol import marker, state
from etl.protocol.cleanup import remove_tool_objects
from etl.source import contentstore
from etl.source.transcripts import check as check_transcript
from etl.store import s3


def plan_one(cfg, course_id):
    """Say what migrate would do with one course, reading the contentstore and S3 only."""
    started = time.monotonic()
    try:
        course = parse_course_id(course_id)
        layout = Layout.of(cfg, course)
        seen = marker.read(cfg, course)
        if seen.foreign:
            return finish_row(outcome_row(course_id, "refused", error=f"its commit key holds an object the tool did "
                                          f"not write, {seen.foreign}"), started)
        if seen.committed:
            return finish_row(outcome_row(course_id, "skipped"), started)
        record, _ = state.read(cfg, course)
        if state.lease_alive(record, cfg.clock):
            return finish_row(outcome_row(course_id, "claimed", error=f"held by {state.holder(record)}"), started)
        live = [o for o in s3.list_objects(cfg, layout.live_root) if o["Key"] != layout.legacy_marker]
        foreign = [k.rsplit("/", 1)[1] for k in remove_tool_objects(cfg, course, "", dry_run=True, listed=live)[1]]
        if foreign:
            return finish_row(outcome_row(course_id, "conflict", error=f"{len(foreign)} live objects without a marker that "
                              f"the tool did not write, e.g. {foreign[0]!r}"), started)
        assets = contentstore.find_transcripts(cfg, course)
        if not record and not assets and not contentstore.course_known(cfg, course):
            raise unknown_course(cfg, course)
        for asset in assets:
            layout.asset_keys(state.epoch_of(record) + 1, asset.name)
        problems = 0
        for asset, data, _, _ in contentstore.scan(cfg, course, assets):
            ok, error = check_transcript(asset.name, data) if data is not None else (True, None)
            if not ok:
                problems += 1
                logs.event("warning", course, "parse_problem", asset=asset.name, error=error)
        return finish_row(outcome_row(course_id, "migrate", transcripts=len(assets), bytes=sum(a.length for a in assets),
                          parse_problems=problems), started)
    except EtlError as err:
        return finish_row(outcome_row(course_id, "failed", error=str(err)), started)
