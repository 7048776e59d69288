"""Migrate Open edX video transcripts from the MongoDB contentstore to S3, one course per transaction.

Each verb is a plain function that takes a ``Config`` first; the CLI
(``python -m etl``) is a thin layer over exactly these functions.
"""

from etl._version import __version__
from etl.batch.migrate import migrate
from etl.extract import extract
from etl.handoff import handoff
from etl.model.config import Config, config_from_env
from etl.model.errors import (
    AlreadyPromoted,
    BatchFailed,
    ConcurrentRun,
    Conflict,
    CorruptSource,
    EtlError,
    Failed,
    ForeignObject,
    IllegalTransition,
    InDoubt,
    InvalidId,
    LeaseExpired,
    NotCommitted,
    NotStaged,
    NotVerified,
    ReconcileError,
    Refused,
    Registered,
    SourceChanged,
    StorageError,
    UsageError,
)
from etl.promote import promote
from etl.protocol.marker import committed
from etl.reconcile import reconcile
from etl.review.diff import diff
from etl.review.report import report
from etl.review.signoff import diff_all
from etl.review.views import history, status
from etl.rollback import rollback
from etl.vacuum import vacuum
from etl.verify import verify


__all__ = [
    "Config", "committed", "config_from_env", "diff", "diff_all", "extract", "handoff", "migrate", "report", "history", "promote", "reconcile", "rollback", "status", "vacuum", "verify",
    "EtlError", "UsageError", "InvalidId", "Refused", "AlreadyPromoted", "NotStaged", "NotCommitted", "Registered", "ConcurrentRun", "LeaseExpired",
    "SourceChanged", "Conflict", "ForeignObject", "InDoubt", "IllegalTransition", "Failed", "CorruptSource", "ReconcileError",
    "StorageError", "BatchFailed", "NotVerified", "__version__",
]
