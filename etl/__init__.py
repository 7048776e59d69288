"""Migrate Open edX video transcripts from the MongoDB contentstore to S3, one course per transaction.

Each verb is a plain function that takes a ``Config`` first; the CLI
(``python -m etl``) is a thin layer over exactly these functions.
"""

__version__ = "0.1.0"

from . import memory as _memory  # noqa: E402  first: it sets the allocators before anything else runs
from .config import Config, config_from_env  # noqa: E402
from .errors import (  # noqa: E402
    AlreadyPromoted, ConcurrentRun, Conflict, CorruptSource, EtlError, Failed, IllegalTransition,
    InvalidId, NotStaged, NotVerified, ReconcileError, Refused, SourceChanged, StorageError, UsageError)
from .diff import diff, diff_all  # noqa: E402
from .extract import extract  # noqa: E402
from .migrate import migrate, report  # noqa: E402
from .promote import promote  # noqa: E402
from .reconcile import reconcile  # noqa: E402
from .rollback import rollback  # noqa: E402
from .state import table as _status_table  # noqa: E402
from .verify import verify  # noqa: E402

del _memory  # imported for its settings; etl.memory stays importable


def status(cfg, course_id=None):
    """Return the migration status table as a pandas DataFrame, one row per course.

    The commit marker decides "promoted": a course whose record lags its marker
    reads as promoted, and one whose lease expired mid-run reads as ``*_stale``.
    """
    return _status_table(cfg, course_id)


__all__ = [
    "Config", "config_from_env", "diff", "diff_all", "extract", "migrate", "report", "promote", "reconcile", "rollback", "status", "verify",
    "EtlError", "UsageError", "InvalidId", "Refused", "AlreadyPromoted", "NotStaged", "ConcurrentRun",
    "SourceChanged", "Conflict", "IllegalTransition", "Failed", "CorruptSource", "ReconcileError",
    "StorageError", "NotVerified", "__version__",
]
