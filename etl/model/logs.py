"""Log course events as one grep-able line each: ``key=value`` text, or JSON objects.

Every event names the course, the run and the event; other fields follow. The
CLI picks the format (``--log-format text|json``); library callers get the
standard ``etl`` logger and may attach their own handlers.
"""

import json
import logging
import sys
import time
from contextlib import contextmanager

from etl.model import redact
from etl.model.errors import UsageError


log = logging.getLogger("etl")
FORMAT = "text"  # the format ``setup`` chose, for other libraries' lines (``OtherFormatter``)


def event(level, course, name, run=None, **fields):
    """Log one course event at ``level`` (a logging level or 'info', 'warning', 'error')."""
    if isinstance(level, str):
        level = getattr(logging, level.upper())
    doc = {"course": str(course), "run": run, "event": name}
    doc.update({k: v for k, v in fields.items() if v is not None})
    log.log(level, "%s", _text(doc), extra={"etl_event": doc})


def _value(value):
    text = str(value)
    if not text or any(c in text for c in ' ="\'\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _text(doc):
    return " ".join(f"{k}={_value(v)}" for k, v in doc.items() if v is not None)


def _utc(record):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    """``2026-11-27T18:02:03.581Z INFO course=… run=… event=staged transcripts=9``"""

    def format(self, record):
        return redact.scrub(f"{_utc(record)} {record.levelname} {record.getMessage()}")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, course, run, event and the event's fields."""

    def format(self, record):
        doc = {"time": _utc(record), "level": record.levelname}
        doc.update(getattr(record, "etl_event", None) or {"message": record.getMessage()})
        doc = {k: redact.scrub(v) if isinstance(v, str) else v for k, v in doc.items()}
        return redact.scrub(json.dumps(doc, default=str, ensure_ascii=False))


class OtherFormatter(logging.Formatter):
    """Write another library's log records (Celery's) in the tool's format, as ``source=… message=…``."""

    def __init__(self, log_format="text"):
        super().__init__()
        self.json = log_format == "json"

    def format(self, record):
        message = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            message += " " + " ".join(self.formatException(record.exc_info).split())  # still one line
        doc = {"source": record.name.split(".")[0], "message": redact.scrub(message)}
        if self.json:
            return redact.scrub(json.dumps({"time": _utc(record), "level": record.levelname, **doc}, default=str,
                                           ensure_ascii=False))
        return redact.scrub(f"{_utc(record)} {record.levelname} {_text(doc)}")


class _Stderr(logging.StreamHandler):
    """Write to whatever ``sys.stderr`` is when a line is logged, not when the handler was made."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup(log_format="text", quiet=False, debug=False):
    """Send the ``etl`` logger to stderr in ``log_format``; quiet keeps warnings and errors only, debug every step."""
    if log_format not in ("text", "json"):
        raise UsageError(f"log format {log_format!r} is not text or json")
    global FORMAT
    FORMAT = log_format
    handler = _Stderr()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if debug else logging.INFO)
    log.propagate = False
    # A library's warning (pandas', say) is one line in the same format, never Python's two raw lines.
    logging.captureWarnings(True)
    warned = _Stderr()
    warned.setFormatter(OtherFormatter(log_format))
    warnings_log = logging.getLogger("py.warnings")
    warnings_log.handlers[:] = [warned]
    warnings_log.propagate = False


def note_line(message, log_format="text"):
    """Return a line for the operator on stderr, beside data on stdout: ``etl: …``, or in json mode one JSON object."""
    message = redact.scrub(str(message))
    if log_format == "json":
        return json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z", "level": "INFO",
                           "event": "note", "message": message}, ensure_ascii=False)
    return f"etl: {message}"


def final_line(message, exit_code, log_format="text", prefix="error"):
    """Return the last line a command prints on stderr: ``etl: error: …``, or in json mode one JSON object."""
    message = redact.scrub(str(message))
    if log_format == "json":
        return json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
                           "level": "ERROR" if exit_code not in (0, 130) else "WARNING", "event": prefix.replace(" ", "_"),
                           "error": message, "exit_code": exit_code}, ensure_ascii=False)
    return f"etl: {prefix}: {message}" if prefix != "interrupted" else f"etl: interrupted; {message}"


def format_in(argv):
    """Return the log format an argument list asks for, before it is checked (for the error that checking may raise)."""
    for i, token in enumerate(argv):
        if token == "--log-format=json" or (token == "--log-format" and argv[i + 1:i + 2] == ["json"]):
            return "json"
    return "text"


@contextmanager
def around_progress():
    """Write log lines above any progress bar, so the bar stays on the bottom line."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(loggers=[log]):
        yield
