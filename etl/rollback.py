"""Roll a course back: remove what the tool wrote for it, so S3 is as before the transaction."""

from dataclasses import asdict, dataclass, field

from . import logs, s3, state
from .errors import Conflict, Refused
from .layout import Layout, new_run_id, parse_course_id

@dataclass
class RollbackResult:
    """What a rollback removed, and what it left because the tool did not write it."""

    course_id: str
    run_id: str
    deleted: int
    was_promoted: bool
    kept_foreign: list = field(default_factory=list)

    def to_dict(self):
        return asdict(self)


def remove_tool_objects(cfg, course, prefix):
    """Delete every object under ``prefix`` that this tool wrote for ``course``.

    Ownership comes from each object's metadata (head), and each delete is
    conditional on the ETag seen, so an object replaced meanwhile is never lost.
    Return (number deleted, keys kept because someone else wrote them).
    """
    listed = list(s3.list_objects(cfg, prefix))

    def remove(obj):
        head = s3.head(cfg, obj["Key"])
        if head is None:
            return 0, None
        if not s3.written_by_tool(head, course):
            return 0, obj["Key"]
        try:
            s3.delete_if_match(cfg, obj["Key"], s3.etag(head["ETag"]))
        except s3.PreconditionFailed:
            return 0, obj["Key"]  # replaced since the head: not ours to delete any more
        return 1, None

    results = s3.run_all(cfg, remove, listed)
    return sum(n for n, _ in results), [k for _, k in results if k]


def discard(cfg, keys):
    """Delete keys this process wrote itself (registered as it wrote them)."""
    s3.delete_many(cfg, keys)


def rollback(cfg, course_id, force=False):
    """Remove a course's transcripts from S3: staging runs, and live objects the tool wrote.

    An uncommitted course is always rolled back. A promoted one (commit marker
    present) needs ``force=True``: then the marker goes first, so readers stop
    trusting the live copy before any of it disappears. Objects the tool did not
    write are never deleted; they are listed in the result.
    """
    course = parse_course_id(course_id)
    layout = Layout(cfg, course)
    marker_head = s3.head(cfg, layout.marker)
    if marker_head and not force:
        raise Refused(f"course {course} is promoted and may be live in Phase II; nothing was deleted. "
                      f"To remove its transcripts from S3 anyway, re-run with --force")
    if marker_head and not s3.written_by_tool(marker_head, course):
        raise Conflict(f"course {course}: {layout.marker} was not written by this tool; "
                       "remove it by hand if it is stale, then re-run")
    run_id = new_run_id()
    claim = state.claim(cfg, course, run_id, state.ROLLING_BACK)
    try:
        if marker_head:
            s3.delete_if_match(cfg, layout.marker, s3.etag(marker_head["ETag"]))
            claim.event("marker_deleted", marker_run_id=marker_head["Metadata"].get(s3.META_RUN))
        live, kept_live = remove_tool_objects(cfg, course, layout.live_root)
        staged, kept_staged = remove_tool_objects(cfg, course, layout.staging_root)
        kept = kept_live + kept_staged
        claim.move(state.ROLLED_BACK, deleted=live + staged + bool(marker_head), kept_foreign=len(kept))
    except BaseException as exc:
        state.record_failure(claim, exc)
        raise
    for key in kept:
        logs.event("warning", course, "kept_foreign", run_id, key=key, reason="not written by this tool")
    return RollbackResult(str(course), run_id, live + staged + bool(marker_head), bool(marker_head), kept)
