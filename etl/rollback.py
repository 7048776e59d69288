"""Roll a course back: remove what the tool wrote for it, so S3 is as before the transaction."""

from dataclasses import asdict, dataclass, field

from . import logs, marker, s3, state
from .cleanup import remove_tool_objects
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

    dry_run: bool = False
    would_delete: list = field(default_factory=list)

    def to_dict(self):
        return asdict(self)

    def __str__(self):
        if self.dry_run:
            lines = [f"rollback {self.course_id} (dry run, nothing changed) would delete "
                     f"{len(self.would_delete)} objects" + (", the commit marker first" if self.was_promoted else "")]
            lines += [f"  {key}" for key in self.would_delete]
        elif self.run_id is None:
            lines = [f"nothing to roll back for {self.course_id}: the tool has written nothing for it"]
        else:
            lines = [f"rolled back {self.course_id}: {self.deleted} objects deleted"
                     + (", including the commit marker" if self.was_promoted else "")]
        if self.kept_foreign:
            lines.append(f"  kept {len(self.kept_foreign)} objects the tool did not write, e.g. {self.kept_foreign[0]}")
        return "\n".join(lines)


@state.verb
def rollback(cfg, course_id, *, force=False, dry_run=False):
    """Remove a course's transcripts from S3: staging runs, and live objects the tool wrote.

    An uncommitted course is always rolled back. A committed one needs
    ``force=True``: then the commit marker goes first (replaced by this run's
    fence), so readers stop trusting the live copy before any of it disappears.
    Objects the tool did not write are never deleted; they are listed in the result.
    With ``dry_run`` the result lists exactly what would be deleted, and nothing changes.

    Args:
        course_id: course id.
        force: also roll back a promoted course; its commit marker goes first.
        dry_run: list exactly what would be deleted, and change nothing.
    """
    course = parse_course_id(course_id)
    layout = Layout(cfg, course)
    looked = state.look(cfg, course)
    committed = looked.seen.committed
    if committed and not force:
        raise Refused(f"course {course} is promoted and may be live in Phase II; nothing was deleted. "
                      f"To remove its transcripts from S3 anyway, re-run with --force")
    if committed and not s3.written_by_tool({"Metadata": looked.seen.meta}, course):
        raise Conflict(f"course {course}: {layout.marker} was not written by this tool; "
                       "remove it by hand if it is stale, then re-run")
    if dry_run:
        (live, kept_live), (staged, kept_staged) = s3.together(
            lambda: remove_tool_objects(cfg, course, layout.live_root, dry_run=True),
            lambda: remove_tool_objects(cfg, course, layout.staging_root, dry_run=True))
        keys = ([layout.marker] if committed else []) + live + staged
        return RollbackResult(str(course), None, 0, committed, kept_live + kept_staged, True, keys)
    if looked.record is None and looked.seen.doc is None and not any(
            next(iter(s3.list_objects(cfg, prefix)), None) for prefix in (layout.live_root, layout.staging_root)):
        return RollbackResult(str(course), None, 0, False)  # never touched: nothing to record either
    run_id = new_run_id()
    claim = state.claim(cfg, course, run_id, state.ROLLING_BACK, looked, uncommit=force)
    try:
        if committed:  # the claim's fence replaced the commit: the course is no longer committed
            claim.note("marker_deleted", marker_run_id=looked.seen.doc.get("run_id"))
        (live, kept_live), (staged, kept_staged) = s3.together(
            lambda: remove_tool_objects(cfg, course, layout.live_root),
            lambda: remove_tool_objects(cfg, course, layout.staging_root))
        kept = kept_live + kept_staged
        deleted = live + staged + committed
        claim.move(state.ROLLED_BACK, deleted=deleted, kept_foreign=len(kept))
    except BaseException as exc:
        state.record_failure(claim, exc)
        raise
    marker.unfence(cfg, course, claim.token)
    for key in kept:
        logs.event("warning", course, "kept_foreign", run_id, key=key, reason="not written by this tool")
    return RollbackResult(str(course), run_id, deleted, committed, kept)
