"""Exceptions: one root, ``EtlError``, whose message is one line for the operator.

Each class carries the CLI exit code documented in the README, so the code an
operator sees depends only on what went wrong, never on where it was raised,
and says whether trying again can help (``transient``): ``migrate --retries``
retries only those.
"""

from etl.model import redact


EXIT_CODES = {
    0: "done",
    1: "unexpected error (a bug: re-run with --debug)",
    2: "usage or configuration error, nothing done",
    3: "refused or stopped to protect data, nothing published (in doubt: re-run once S3 answers)",
    4: "failed and rolled back",
    5: "not verified",
    130: "interrupted",
    141: "output pipe closed",
}


class EtlError(Exception):
    """Root of every error this tool raises on purpose."""

    exit_code = 1
    transient = False  # True when the same attempt may succeed later: S3 or MongoDB faults, a lost race

    def __init__(self, message):
        # Operators grep logs line by line: never let a message span lines.
        super().__init__(" ".join(str(message).split()))


class UsageError(EtlError):
    """Bad flags, configuration or ids: nothing was read or written."""

    exit_code = 2


class InvalidId(UsageError):
    """A course id or asset name cannot safely become part of an S3 key."""


class Refused(EtlError):
    """The tool declined to act, to protect data; nothing was changed."""

    exit_code = 3


class AlreadyPromoted(Refused):
    """The course's commit marker exists: its live data is never overwritten."""


class NotStaged(Refused):
    """The verb needs a staged run and the course has none."""


class ConcurrentRun(Refused):
    """Another runner holds the course, or won a conditional write first."""

    transient = True


class LeaseExpired(ConcurrentRun):
    """The runner could not renew its lease in time, so it stopped before its next write."""


class SourceChanged(Refused):
    """The contentstore changed between extract and promote."""

    transient = True  # a new extract takes the edit in


class Conflict(Refused):
    """Objects the tool did not write sit where it would write."""


class ForeignObject(Conflict):
    """The commit key holds an object the tool did not write: nothing can be decided until someone moves it."""

    exit_code = 2


class InDoubt(Refused):
    """The commit request was sent and the commit key could not be read back: every object was left in place."""

    transient = True  # the next run reads the key and finishes or rolls forward


class NotCommitted(Refused):
    """The verb needs a committed course (the hand-off to Open edX), and the course is not one."""


class Registered(Refused):
    """edx-val rows registered in place by 0.6.0 name this epoch's objects: undo them before removing those."""


class IllegalTransition(Refused):
    """A state change the course state machine does not allow."""


class Failed(EtlError):
    """The course could not be migrated; S3 was rolled back."""

    exit_code = 4


class CorruptSource(Failed):
    """A contentstore asset's chunks disagree with its fs.files document."""


class ReconcileError(Failed):
    """Counts or checksums of contentstore, manifest and S3 disagree."""

    transient = True  # a new extract stages the course afresh


class StorageError(Failed):
    """S3 or MongoDB failed, after botocore's and pymongo's own retries."""

    transient = True


class BatchFailed(Failed):
    """At least one course of a batch failed; the others are done."""


class NotVerified(EtlError):
    """Verify found the course not ready for Phase II."""

    exit_code = 5


def describe(exc):
    """Return a one-line reason for an exception, fit for the record and the log."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    text = redact.scrub(" ".join(str(exc).split()))
    return text if text.startswith("course ") else f"{type(exc).__name__}: {text}"


def first_few(names, limit=5):
    """Return names for a one-line message: the first few, then how many more."""
    names = sorted(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
