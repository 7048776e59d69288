"""Roll a course back: remove what the tool wrote for it, so no current object of the course is left in S3.

On a versioned bucket the deleted objects stay as noncurrent versions: the
result says how many, and ``purge_versions`` deletes the tool's own by version id.
"""

from dataclasses import asdict, dataclass, field

from etl.model import logs
from etl.model.errors import Conflict, Refused, Registered
from etl.model.layout import Layout, new_run_id, parse_course_id
from etl.protocol import claims, receipts, state
from etl.protocol.cleanup import remove_tool_objects
from etl.protocol.transaction import Transaction
from etl.protocol.known import refuse_unknown
from etl.store import pool, probe, s3, versions


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
    noncurrent: int = 0  # versions a versioned bucket still keeps of the course's objects
    delete_markers: int = 0
    purged: int = 0  # noncurrent versions and delete markers deleted by --purge-versions
    would_purge: list = field(default_factory=list)  # with --dry-run: "key@version" of each one it would delete
    purged_versions: list = field(default_factory=list)  # "key@version" of each one --purge-versions deleted

    def to_dict(self):
        return asdict(self)

    def __str__(self):
        if self.dry_run:
            lines = [f"rollback {self.course_id} (dry run, nothing changed) would "
                     + ("replace the commit with a release first (--force), then " if self.was_promoted else "")
                     + f"delete {len(self.would_delete)} objects"]
            lines += [f"  {key}" for key in self.would_delete]
            if self.would_purge:
                lines.append(f"  and purge exactly {len(self.would_purge)} noncurrent versions and delete markers the "
                             "tool wrote (with those its own deletions and writes leave):")
                lines += [f"  {version}" for version in self.would_purge]
        elif self.run_id is None:
            lines = [f"nothing to roll back for {self.course_id}: the tool has nothing of it in S3 (rolled back "
                     "already, or never migrated)"]
        else:
            lines = [f"rolled back {self.course_id}: "
                     + ("the commit replaced with a release, " if self.was_promoted else "")
                     + f"{self.deleted} objects deleted"]
        if self.kept_foreign:
            lines.append(f"  kept {len(self.kept_foreign)} objects the tool did not write, e.g. {self.kept_foreign[0]}")
        if self.purged:
            lines.append(f"  purged {self.purged} noncurrent versions and delete markers the tool wrote")
        if self.noncurrent or self.delete_markers:
            lines.append(f"  the bucket is versioned: {self.noncurrent} noncurrent versions and {self.delete_markers} "
                         "delete markers of the course remain; `rollback COURSE --purge-versions` deletes the "
                         "tool's own, or a lifecycle rule expires them (README, \"S3 stores\")")
        return "\n".join(lines)


@claims.verb
def rollback(cfg, course_id, *, force=False, dry_run=False, purge_versions=False):
    """Remove a course's transcripts from S3: staging runs, and live objects the tool wrote.

    An uncommitted course is always rolled back. A committed one needs
    ``force=True``: then the commit goes first (replaced by this run's fence),
    so readers stop trusting the live copy before any of it disappears. The
    rollback takes the course's next epoch and deletes only objects of earlier
    epochs, so a rollback that froze can never delete what a later run wrote.
    Objects the tool did not write are never deleted; they are listed in the
    result. With ``dry_run`` the result lists exactly what would be deleted,
    and nothing changes. On a versioned bucket the deleted objects remain as
    noncurrent versions, which the result counts; with ``purge_versions`` the
    ones the tool wrote are deleted by version id as well.

    Args:
        course_id: course id.
        force: also roll back a promoted course; its commit marker goes first.
        dry_run: list exactly what would be deleted, and change nothing.
        purge_versions: on a versioned bucket, also delete the noncurrent versions the tool wrote.
    """
    course = parse_course_id(course_id)
    layout = Layout.of(cfg, course)
    looked = claims.look(cfg, course)
    committed = looked.seen.committed
    commit_meta = looked.seen.meta if looked.seen.doc is not None else (looked.seen.legacy or looked.seen).meta
    if committed and not force:  # a dry run predicts the run: the same refusal, the same exit code
        raise Refused(f"course {course} is promoted and may be live in Phase II; nothing was deleted. "
                      f"To remove its transcripts from S3 anyway, re-run with --force")
    if committed and not s3.written_by_tool({"Metadata": commit_meta}, course):
        raise Conflict(f"course {course}: the commit marker was not written by this tool; "
                       "remove it by hand if it is stale, then re-run")
    in_place = receipts.in_place_epochs(cfg, course) if committed else set()
    if in_place:
        raise Registered(f"course {course}: edx-val rows registered in place by 0.6.0 name the objects of epoch "
                         f"{', '.join(f'e{e}' for e in sorted(in_place))}; nothing was deleted; undo that registration "
                         f"first (`{receipts.how_to_undo(course)}`), then roll back")
    upto = lambda epoch: epoch is not None and epoch <= looked.epoch  # noqa: E731 (every epoch it read)
    untouched = looked.record is None and looked.seen.doc is None and looked.seen.legacy is None and not any(
        next(iter(s3.list_objects(cfg, prefix)), None) for prefix in (layout.live_root, layout.staging_root))
    if untouched:
        refuse_unknown(cfg, [course_id])  # a typo during an incident is not "nothing to roll back"
    prefixes = [layout.staging_root, layout.live_root]
    settled = not committed and looked.state in (None, state.ROLLED_BACK)
    if dry_run or settled:
        (live, kept_live), (staged, kept_staged) = pool.together(
            lambda: remove_tool_objects(cfg, course, layout.live_root, dry_run=True, epochs=upto),
            lambda: remove_tool_objects(cfg, course, layout.staging_root, dry_run=True, epochs=upto))
        if settled and not live and not staged:  # rolled back already: no claim, so no write a purge would chase
            result = RollbackResult(str(course), None, 0, False, kept_live + kept_staged, dry_run)
            _versions(cfg, course, prefixes, result, purge_versions, dry_run)
            return result
        if dry_run:
            result = RollbackResult(str(course), None, 0, committed, kept_live + kept_staged, True, live + staged)
            if purge_versions:
                result.would_purge = versions.forecast(cfg, course, prefixes, live + staged, layout.marker)
            return result
    run_id = new_run_id()
    tx = Transaction.begin(cfg, course, run_id, state.ROLLING_BACK, looked, uncommit=force)
    with tx.running():
        claim = tx.claim
        if committed:  # the claim's fence replaced the commit: the course is no longer committed
            claim.note("marker_deleted", marker_run_id=looked.seen.commit.get("run_id"),
                       marker_epoch=looked.seen.committed_epoch)
        (live, kept_live), (staged, kept_staged) = pool.together(
            lambda: remove_tool_objects(cfg, course, layout.live_root, epochs=claim.earlier),
            lambda: remove_tool_objects(cfg, course, layout.staging_root, epochs=claim.earlier))
        kept = kept_live + kept_staged
        deleted = len(live) + len(staged)
        tx.end(state.ROLLED_BACK, "rolled_back", deleted=deleted, kept_foreign=len(kept))
    for key in kept:
        logs.event("warning", course, "kept_foreign", run_id, key=key, reason="not written by this tool")
    result = RollbackResult(str(course), run_id, deleted, committed, kept)
    _versions(cfg, course, prefixes, result, purge_versions)
    return result


def _versions(cfg, course, prefixes, result, purge_versions, dry_run=False):
    """Purge (or, in a dry run, forecast) the tool's noncurrent versions; on a versioned bucket, count what remains."""
    if dry_run:
        result.would_purge = versions.forecast(cfg, course, prefixes) if purge_versions else []
        return
    if purge_versions:
        result.purged_versions = versions.purge(cfg, course, prefixes)
        result.purged = len(result.purged_versions)
    store = probe.known(cfg)
    if store is not None and store.versioned:
        result.noncurrent, result.delete_markers = versions.left_behind(cfg, prefixes)
