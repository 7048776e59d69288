"""Extract a course: snapshot its transcripts into a fresh staging run with a Parquet manifest."""

import time
from dataclasses import asdict, dataclass
from typing import Any

from etl import stage
from etl._version import __version__
from etl.model import logs, manifest
from etl.model.errors import Conflict, UsageError
from etl.model.layout import Layout, new_run_id, parse_course_id
from etl.protocol import claims, state
from etl.protocol.cleanup import remove_tool_objects
from etl.protocol.known import refuse_unknown
from etl.protocol.transaction import Transaction
from etl.source import contentstore
from etl.store import pool, s3


@dataclass
class ExtractResult:
    """What one extract staged."""

    course_id: str
    run_id: str
    transcripts: int
    bytes: int
    parse_problems: int
    manifest_key: str
    local_manifest: str
    source_fingerprint: str
    seconds: float

    def to_dict(self):
        return asdict(self)

    def __str__(self):
        local = f" (local copy {self.local_manifest})" if self.local_manifest else ""
        return (f"staged {self.course_id} run {self.run_id}: {self.transcripts} transcripts, {self.bytes} bytes, "
                f"{self.parse_problems} parse problems; manifest {self.manifest_key}{local}")


@dataclass
class Staged:
    """A run this runner has just staged and still holds (extracting): what promote needs, known first-hand."""

    tx: Any  # the course's Transaction, still open: its claim, fence and every key it wrote
    manifest: bytes
    fields: dict  # what the record says of a staged run


@claims.verb
def extract(cfg, course_id):
    """Snapshot a course's transcripts into a new staging run and write its Parquet manifest.

    Refuse a promoted course. The run takes the course's next epoch and writes
    only under it. Leftovers of earlier unfinished runs (earlier epochs) are
    removed first. On any failure the run's staged objects are deleted and the
    course is recorded as failed.

    Args:
        course_id: course id, course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN.
    """
    return extract_course(cfg, course_id)


@claims.verb
def extract_course(cfg, course_id, looked=None, hold=False):
    """Extract a course as ``extract`` does, from what the caller has just read of it (``claims.look``).

    With ``hold`` the course stays claimed by this runner and (ExtractResult, Staged)
    comes back, for ``promote.promote_staged`` to carry on with the same claim.
    """
    started = time.monotonic()
    course = parse_course_id(course_id)
    cfg.require_contentstore()
    layout = Layout.of(cfg, course)
    looked = looked or claims.look(cfg, course)
    if looked.seen.committed:
        claims.refuse_promoted(cfg, course, looked.seen)
    assets = contentstore.find_transcripts(cfg, course)
    if not looked.record and not assets and not contentstore.course_known(cfg, course):
        refuse_unknown(cfg, [course_id])  # names the closest id
        raise unknown_course(cfg, course)
    run_id = new_run_id()
    for asset in assets:  # refuse names that cannot become keys before anything is written
        layout.asset_keys(looked.epoch + 1, asset.name)
    # The leftovers are listed while the claim is made; only a run that holds the claim acts on the listing.
    tx, listed = pool.together(lambda: Transaction.begin(cfg, course, run_id, state.EXTRACTING, looked),
                               lambda: _list_leftovers(cfg, layout, staging=looked.record is not None))
    with tx.running():  # every write of the block checks the lease first
        _clear_leftovers(tx, listed)
        fingerprint = contentstore.fingerprint(a.identity() for a in assets)
        rows = stage.stage(cfg, course, tx, assets)
        data = manifest.to_bytes(rows, course=course, run_id=run_id, source_fingerprint=fingerprint,
                                 tool_version=__version__, created_at=state.iso(state.now()))
        key = layout.staging_manifest(tx.epoch)
        tx.put(key, data, content_type=manifest.CONTENT_TYPE)
        local = manifest.save_local(cfg, course, run_id, data)
        total = sum(r.length for r in rows)
        problems = sum(1 for r in rows if r.parse_ok is False)
        for r in rows:
            if r.parse_ok is False:
                logs.event("warning", course, "parse_problem", run_id, asset=r.asset_name, error=r.parse_error)
        fields = dict(transcripts=len(rows), bytes=total, parse_problems=problems, manifest_key=key,
                      source_fingerprint=fingerprint, staged_epoch=tx.epoch)
        if hold:
            tx.claim.note(state.STAGED, previous=state.EXTRACTING, **fields)  # recorded with the move to promoting
        else:
            tx.publish(tx.written, lambda: tx.claim.move(state.STAGED, **fields))  # the run is the course's now
    result = ExtractResult(str(course), run_id, len(rows), total, problems, key, local or "",
                           fingerprint, round(time.monotonic() - started, 3))
    return (result, Staged(tx, data, fields)) if hold else result


def unknown_course(cfg, course):
    """Return the refusal for a course id that neither the modulestore nor the contentstore knows."""
    db = cfg.require_contentstore()
    store = cfg.modulestore_db or db.name
    return UsageError(f"course {course} is unknown: neither the modulestore (database {store}) nor the "
                      f"contentstore (database {db.name}) has it, so nothing was written; check the id and "
                      "--mongo-db, and give --modulestore-db if the modulestore lives in another database")


def _list_leftovers(cfg, layout, staging=True):
    """List the course's staging and live prefixes; return the listings, or the error to raise once claimed.

    Without ``staging`` the staging prefix is not listed: a course with no status
    record has no staging runs, since every run writes its record before anything else.
    """
    try:
        return pool.together(lambda: list(s3.list_objects(cfg, layout.staging_root)) if staging else [],
                           lambda: list(s3.list_objects(cfg, layout.live_root)))
    except Exception as exc:  # raised by the run that holds the claim, so its failure is recorded
        return exc


def _clear_leftovers(tx, listed):
    """Remove earlier epochs' staging and uncommitted live objects; refuse foreign live objects.

    Only epochs below this claim's own go: the claim's fence stands, so none of
    them can commit any more, and every later epoch is out of reach.
    """
    if isinstance(listed, Exception):
        raise listed
    cfg, course, layout, claim = tx.cfg, tx.course, tx.layout, tx.claim
    in_staging, in_live = listed
    (staged, _), (live, foreign) = pool.together(
        lambda: remove_tool_objects(cfg, course, layout.staging_root, listed=in_staging, epochs=claim.earlier),
        lambda: remove_tool_objects(cfg, course, layout.live_root, listed=in_live, epochs=claim.earlier))
    if staged or live:
        claim.note("leftovers_removed", staged=len(staged), live=len(live))
    if foreign:
        raise Conflict(f"course {course}: {len(foreign)} object(s) the tool did not write are under "
                       f"{layout.live_root}, e.g. {foreign[0]}; move them away or choose another --live-prefix")
