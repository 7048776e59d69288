"""Vacuum a course: delete the objects of dead epochs once they are older than a retention period."""

from dataclasses import asdict, dataclass, field

from etl.model import logs
from etl.model.errors import UsageError
from etl.model.layout import parse_course_id
from etl.protocol import claims, marker, receipts, state
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

    An epoch's run can commit only while the commit key holds its fence, and
    the key only ever moves on (conditional puts, each document unique). So an
    epoch is dead once the key names a later epoch, or a release of its own, or
    another epoch's commit: no request of its run, however late, can commit it.
    Vacuum reads the key and deletes only such epochs, never the committed one,
    a staged run awaiting promote (an in-doubt course's too), one named by a
    0.6.0 registration, or anything while a runner holds the course under a live
    lease. It needs no claim of its own: it writes nothing, and what it deletes
    no commit can ever name again (docs/protocol.md, "Every actor"). Courses
    migrated by 0.3.0 and never claimed since have no epochs, and vacuum leaves
    them alone. With ``dry_run`` nothing is deleted.

    Args:
        course_id: course id.
        retain_days: keep dead objects younger than this many days (0 deletes them all).
        dry_run: list exactly what would be deleted, and change nothing.
    """
    if not isinstance(retain_days, (int, float)) or retain_days < 0:
        raise UsageError("--retain-days must be 0 or more")
    course = parse_course_id(course_id)
    looked = claims.look(cfg, course)
    layout = looked.layout
    if looked.record is None:
        refuse_unknown(cfg, [course_id])
    result = VacuumResult(str(course), dry_run=dry_run)
    if state.lease_alive(looked.record, cfg.clock):
        result.kept[state.epoch_of(looked.record)] = (f"{looked.state} by run {looked.record.get('run_id')}, at "
                                                      "work now: nothing of the course is vacuumed until it ends")
        return result
    alive = _alive(cfg, course, looked)
    # Ages by S3's clock (the listing's Date minus LastModified): a host whose clock runs fast deletes nothing early.
    retain = retain_days * 86400
    listed = [o for prefix in (layout.staging_root, layout.live_root) for o in s3.list_aged(cfg, prefix)]
    present = {layout.epoch_of(o["Key"]) for o in listed}
    result.kept = {e: why for e, why in alive.items() if e is not None and e in present}
    old = [o for o in listed if retain == 0 or (o["Age"] is not None and o["Age"] >= retain)]
    dead = lambda epoch: epoch is not None and epoch > 0 and epoch not in alive and alive[None](epoch)  # noqa: E731
    found, _ = remove_tool_objects(cfg, course, "", dry_run=dry_run, listed=old, epochs=dead)
    result.epochs = sorted({layout.epoch_of(k) for k in found})
    if dry_run:
        result.would_delete = found
        return result
    result.deleted = len(found)
    if result.deleted:
        logs.event("debug", course, "vacuumed", None, deleted=result.deleted, epochs=result.epochs)
    return result


def _alive(cfg, course, looked):
    """Return {epoch: why it stays} for every epoch a commit may still name, and at None the rule for the rest."""
    seen, record = looked.seen, looked.record
    alive = {}
    if seen.committed_epoch is not None:
        alive[seen.committed_epoch] = "committed"
        below = state.epoch_of(record)  # nothing but a forced rollback replaces a commit, and it never commits
        alive[None] = lambda epoch: epoch < below
    elif seen.epoch is not None:
        key = seen.epoch
        if seen.holds == marker.FENCED:
            if key == state.epoch_of(record) and record.get("run_id") == seen.doc.get("run_id"):  # a stopped run's
                alive[key] = (f"{record.get('state')} by run {record.get('run_id')}; `python -m etl migrate {course}`"
                              f" or `python -m etl rollback {course}` removes what it left (its fence still stands)")
            else:
                alive[key] = f"its fence stands at the commit key: run {seen.doc.get('run_id')} may still commit it"
        alive[None] = lambda epoch: epoch < key or (epoch == key and seen.holds == marker.RELEASED)
        for epoch in range(key + 1, state.epoch_of(record) + 1):
            alive[epoch] = "claimed after the commit key's epoch: its fence may still land"
    else:
        alive[None] = lambda epoch: False  # nothing at the key: no epoch is provably dead
    if looked.state in (state.STAGED, state.PROMOTING, state.IN_DOUBT) and record.get("staged_epoch"):
        alive[int(record["staged_epoch"])] = (f"staged run of a course {looked.state}, awaiting promote; `python -m "
                                              f"etl migrate {course}` promotes it")
    for epoch in receipts.in_place_epochs(cfg, course):
        alive[epoch] = f"registered in place in Open edX by 0.6.0 (undo: {receipts.how_to_undo(course)})"
    return alive
