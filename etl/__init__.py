"""Migrate Open edX video transcripts from the MongoDB contentstore to S3, one course per transaction.

Each verb is a plain function that takes a ``Config`` first; the CLI
(``python -m etl``) is a thin layer over exactly these functions.
"""

from ._version import __version__
from .config import Config, config_from_env
from .errors import (
    AlreadyPromoted, BatchFailed, ConcurrentRun, Conflict, CorruptSource, EtlError, Failed, IllegalTransition,
    InvalidId, LeaseExpired, NotStaged, NotVerified, ReconcileError, Refused, SourceChanged, StorageError, UsageError)
from .diff import diff
from .extract import extract
from .marker import committed
from .migrate import migrate, report
from .promote import promote
from .reconcile import reconcile
from .rollback import rollback
from .signoff import diff_all
from .state import history, status
from .vacuum import vacuum
from .verify import verify


__all__ = [
    "Config", "committed", "config_from_env", "diff", "diff_all", "extract", "migrate", "report", "history", "promote", "reconcile", "rollback", "status", "vacuum", "verify",
    "EtlError", "UsageError", "InvalidId", "Refused", "AlreadyPromoted", "NotStaged", "ConcurrentRun", "LeaseExpired",
    "SourceChanged", "Conflict", "IllegalTransition", "Failed", "CorruptSource", "ReconcileError",
    "StorageError", "BatchFailed", "NotVerified", "__version__",
]
