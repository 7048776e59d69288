"""Run one course's transaction, the unit of work every engine runs: extract, promote, verify, with retries."""

import time

from etl.batch.summary import finish_row, outcome_row
from etl.extract import extract_course
from etl.model import logs
from etl.model.errors import AlreadyPromoted, ConcurrentRun, Conflict, EtlError, ForeignObject, InDoubt, NotStaged, describe
from etl.model.layout import parse_course_id
from etl.promote import promote, promote_staged
from etl.protocol import claims, marker, state
from etl.vacuum import vacuum as vacuum_course
from etl.verify import VerifyResult, verify, verify_course


def migrate_course(cfg, course_id, retries=1, vacuum=False):
    """Run one course's transaction, retrying transient failures; return its summary row (a dict).

    The unit of work of every batch: the thread pool and the Celery task run exactly this.
    """
    row = _migrate_course(cfg, course_id, retries)
    if vacuum and row["outcome"] in ("promoted", "skipped"):
        try:
            vacuum_course(cfg, course_id)
        except EtlError as err:  # the course is done; its old epochs wait for the next vacuum
            logs.event("warning", course_id, "vacuum_failed", error=describe(err))
    return row


def _migrate_course(cfg, course_id, retries):
    started, error = time.monotonic(), None
    for attempt in range(1, retries + 2):
        try:
            course = parse_course_id(course_id)
            looked = claims.look(cfg, course)
            if looked.seen.committed:
                claims.refuse_promoted(cfg, course, looked.seen)
            record = looked.record
            if (record and record.get("state") in (state.STAGED, state.PROMOTING, state.IN_DOUBT)
                    and record.get("staged_epoch")
                    and not state.lease_alive(record, cfg.clock)):
                logs.event("debug", course, "resume", record.get("run_id"), state=record.get("state"),
                           staged_epoch=record.get("staged_epoch"))
                extracted = None  # rolled forward into a new epoch: reconcile and the source check guard it
                promoted, published = promote(cfg, course_id), None
            else:  # one claim from extract to commit: promote trusts what this runner just staged
                extracted, staged = extract_course(cfg, course_id, looked, hold=True)
                promoted, published = promote_staged(cfg, course, staged)
            try:
                checked = verify_course(cfg, course, published)
            except EtlError as err:  # committed; only the check after it failed: report it, go on
                checked = VerifyResult(str(course), problems=[f"verify failed: {describe(err)}"])
            if not checked.ok:
                logs.event("warning", course, "not_ready", promoted.run_id, problems=checked.problems)
            return finish_row(outcome_row(course_id, "promoted", transcripts=promoted.transcripts, bytes=promoted.bytes,
                              parse_problems=extracted.parse_problems if extracted else None, attempts=attempt,
                              run_id=promoted.run_id, ready=checked.ok,
                              error=None if checked.ok else "; ".join(checked.problems)), started)
        except AlreadyPromoted:
            try:
                checked = verify(cfg, course_id)  # committed before: still what the contentstore holds?
            except EtlError as err:  # the course is committed; only its check failed: report it, go on
                return finish_row(outcome_row(course_id, "skipped", attempts=attempt - 1, ready=False,
                                  error=f"verify failed: {describe(err)}"), started)
            return finish_row(outcome_row(course_id, "skipped", attempts=attempt - 1, ready=checked.ok,
                              error=None if checked.ok else "; ".join(checked.problems)), started)
        except (ConcurrentRun, NotStaged) as err:  # another runner has the course: the winner finishes it
            if _committed(cfg, course_id):
                return finish_row(outcome_row(course_id, "skipped", attempts=attempt), started)
            return finish_row(outcome_row(course_id, "claimed", attempts=attempt, error=str(err)), started)
        except ForeignObject as err:  # nothing can be decided until someone moves it: not a retry's to fix
            return finish_row(outcome_row(course_id, "refused", attempts=attempt, error=str(err)), started)
        except Conflict as err:
            return finish_row(outcome_row(course_id, "conflict", attempts=attempt, error=str(err)), started)
        except InDoubt as err:  # every object is in place; the next run reads the commit key and finishes
            return finish_row(outcome_row(course_id, "in_doubt", attempts=attempt, error=str(err)), started)
        except Exception as err:  # the course was rolled back; retry only what a retry can fix
            error = describe(err)
            if _committed(cfg, course_id):  # another runner won the race to promote it
                return finish_row(outcome_row(course_id, "skipped", attempts=attempt), started)
            if not getattr(err, "transient", False) or attempt > retries:
                return finish_row(outcome_row(course_id, "failed", attempts=attempt, error=error), started)
            logs.event("warning", course_id, "retry", attempt=attempt, error=error)


def _committed(cfg, course_id):
    try:
        return marker.is_committed(cfg, parse_course_id(course_id))
    except EtlError:
        return False
