"""Vacuum a course: delete the objects of dead epochs once they are older than a retention period."""

from dataclasses import asdict, dataclass, field

from etl.model import logs
from etl.model.errors import UsageError
from etl.model.layout import Layout, parse_course_id
from etl.protocol import claims, receipts, state
from etl.protocol.cleanup import remove_tool_objects
from etl.protocol.known import refuse_unknown
from etl.store import s3


RETAIN_DAYS = 7  # as Delta Lake's VACUUM: a reader that fetched the previous commit never meets a missing object


@dataclass
class VacuumResult:
    """What a vacuum deleted (or would delete), and which epochs it kept."""

    course_id: str
    deleted: int = 0
    epochs: list = field(default_factory=list)  # the dead epochs it deleted from
    kept: dict = field(default_factory=dict)  # epoch -> why it stays
    dry_run: bool = False
    would_delete: list = field(default_factory=list)

    def to_dict(self):
        return asdict(self)

    def __str__(self):
        kept = ", ".join(f"e{e} ({why})" for e, why in sorted(self.kept.items()))
        tail = f"; kept {kept}" if kept else ""
        if self.dry_run:
            lines = [f"vacuum {self.course_id} (dry run, nothing changed) would delete {len(self.would_delete)} "
                     f"objects{tail}"]
            return "\n".join(lines + [f"  {k}" for k in self.would_delete])
        epochs = ", ".join(f"e{e}" for e in self.epochs) or "none"
        return f"vacuumed {self.course_id}: {self.deleted} objects of dead epochs deleted (epochs {epochs}){tail}"


def vacuum(cfg, course_id, *, retain_days=RETAIN_DAYS, dry_run=False):
    """Delete the objects of a course's dead epochs that are older than ``retain_days`` days.

    A dead epoch is one strictly below the epoch the course's record names,
    that is not committed, not a staged run awaiting promote, and not named by
    a Phase II registration. A stale runner's epochs are all below the record's,
    and any claim made after this vacuum read the record takes a higher epoch,
    so vacuum, which holds no claim, can never delete what a live runner or a
    commit needs. Courses migrated by 0.3.0 and never claimed since have no
    epochs, and vacuum leaves them alone. With ``dry_run`` nothing is deleted.

    Args:
        course_id: course id.
        retain_days: keep dead objects younger than this many days (0 deletes them all).
        dry_run: list exactly what would be deleted, and change nothing.
    """
    if not isinstance(retain_days, (int, float)) or retain_days < 0:
        raise UsageError("--retain-days must be 0 or more")
    course = parse_course_id(course_id)
    layout = Layout(cfg, course)
    looked = claims.look(cfg, course)
    if looked.record is None:
        refuse_unknown(cfg, [course_id])
    result = VacuumResult(str(course), dry_run=dry_run)
    below = state.epoch_of(looked.record)
    kept = result.kept
    if looked.seen.committed_epoch is not None:
        kept[looked.seen.committed_epoch] = "committed"
    if looked.state in (state.STAGED, state.PROMOTING) and looked.record.get("staged_epoch"):
        kept[int(looked.record["staged_epoch"])] = "staged, awaiting promote"
    if looked.state in state.IN_PROGRESS or looked.state in (state.FAILED, state.IN_DOUBT):
        # The latest claim's own epoch is never dead: its run may be at work, and if it stopped, the next
        # claim (migrate, or rollback) removes what it left, as the delete rule allows.
        alive = state.lease_alive(looked.record, cfg.clock)
        kept.setdefault(below, f"{looked.state} by run {looked.record.get('run_id')}"
                        + (", at work now" if alive else f"; `python -m etl migrate {course}` or "
                           f"`python -m etl rollback {course}` removes what it left"))
    for epoch in receipts.in_place_epochs(cfg, course):
        kept[epoch] = f"registered in place in Open edX by 0.6.0 (undo: {receipts.how_to_undo(course)})"
    # Ages by S3's clock (the listing's Date minus LastModified): a host whose clock runs fast deletes nothing early.
    retain = retain_days * 86400
    listed = [o for prefix in (layout.staging_root, layout.live_root) for o in s3.list_aged(cfg, prefix)]
    old = [o for o in listed if retain == 0 or (o["Age"] is not None and o["Age"] >= retain)]
    dead = lambda epoch: epoch is not None and epoch < below and epoch not in kept  # noqa: E731
    found, _ = remove_tool_objects(cfg, course, "", dry_run=dry_run, listed=old, epochs=dead)
    result.epochs = sorted({layout.epoch_of(k) for k in found})
    if dry_run:
        result.would_delete = found
        return result
    result.deleted = len(found)
    if result.deleted:
        logs.event("debug", course, "vacuumed", None, deleted=result.deleted, epochs=result.epochs)
    return result
