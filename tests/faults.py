"""Fault injection for crash tests: make the N-th S3 or contentstore call raise, or kill the process.

``install(cfg)`` hooks one Config: a botocore ``before-call`` handler on its S3
client, and a wrapper around its contentstore Database that counts every
``find``. Production code carries no hook. Unarmed it only counts calls. Arm it
with ``arm()``, or in a child process with the environment (``ETL_FAULT_AT=N``,
``ETL_FAULT_ACTION=raise|kill``) and ``arm_from_env()``.
"""

import os
import signal
import threading

_lock = threading.Lock()
_state = {"count": 0, "at": None, "action": "raise", "fired": None}


class InjectedFault(Exception):
    """The fault a test asked for: not an EtlError, so it looks like any unexpected failure."""


def arm(at, action="raise"):
    """Fail the ``at``-th call from now (1-based); ``action`` is 'raise' or 'kill' (SIGKILL)."""
    if action not in ("raise", "kill"):
        raise ValueError("action must be 'raise' or 'kill'")
    with _lock:
        _state.update(count=0, at=at, action=action, fired=None)


def disarm():
    """Stop injecting; return how many calls were counted since arming."""
    with _lock:
        count = _state["count"]
        _state.update(at=None, fired=None)
        return count


def count():
    """Return the calls counted since the last arm()."""
    return _state["count"]


def fired():
    """Return a description of the call that was failed, or None."""
    return _state["fired"]


def tick(what):
    """Count one call; fail it if it is the armed one."""
    with _lock:
        _state["count"] += 1
        if _state["at"] is None or _state["count"] != _state["at"]:
            return
        _state["fired"] = f"call {_state['count']}: {what}"
        action = _state["action"]
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise InjectedFault(f"injected fault at {_state['fired']}")


def s3_hook(model=None, **_):
    """botocore before-call handler: count (and maybe fail) one S3 API call."""
    tick(f"s3 {model.name if model is not None else '?'}")


def arm_from_env():
    """Arm from ``ETL_FAULT_AT`` and ``ETL_FAULT_ACTION``, when set."""
    at = os.environ.get("ETL_FAULT_AT")
    if at:
        arm(int(at), os.environ.get("ETL_FAULT_ACTION", "raise"))


class _Collection:
    def __init__(self, collection):
        self._collection = collection

    def find(self, *args, **kwargs):
        tick(f"mongo {self._collection.name} find")
        return self._collection.find(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._collection, name)


class _Database:
    """A contentstore Database whose collections count (and may fail) every find."""

    def __init__(self, db):
        self._db = db

    def __getitem__(self, name):
        return _Collection(self._db[name])

    def __getattr__(self, name):
        return getattr(self._db, name)


def install(cfg):
    """Count (and maybe fail) every S3 call and contentstore query ``cfg`` makes; return cfg."""
    cfg.s3.meta.events.register("before-call.s3.*", s3_hook)
    if cfg.contentstore is not None and not isinstance(cfg.contentstore, _Database):
        cfg.contentstore = _Database(cfg.contentstore)
    return cfg
