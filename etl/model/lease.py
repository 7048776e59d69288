"""Tell time for leases: S3's clock for another runner's lease, this runner's own clock for its own.

A lease is judged by the one clock every runner shares, S3's: a record is
``age`` seconds old when S3's ``Date`` on the answer is that far past the
record's ``Last-Modified``. Two hosts' wall clocks are never compared, so a
reader whose clock runs ahead cannot take a course over early.

A runner judges its own lease with its monotonic clock: it stops writing once
it cannot be sure its lease still stands (``LeaseClock``), and its holder
identity (host, boot, pid namespace, pid and process start time) lets another
process on the same machine see at once that the holder is gone.
"""

import os
import socket
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime


_BOOT_ID = "/proc/sys/kernel/random/boot_id"


class LeaseClock:
    """The clock a runner reads for leases; ``advance`` moves it on, as tests do to expire a lease at once."""

    def __init__(self, ahead=0.0):
        self.ahead = ahead

    def monotonic(self):
        """Return this runner's monotonic time, for its own lease."""
        return time.monotonic() + self.ahead

    def age(self, seconds):
        """Return how old a record is, given its age by S3's clock."""
        return seconds + self.ahead

    def advance(self, seconds):
        """Move the clock on by ``seconds``."""
        self.ahead += seconds


def s3_now(response):
    """Return the time an S3 answer was sent, by S3's own clock (its ``Date`` header), or None."""
    try:
        date = parsedate_to_datetime(response["ResponseMetadata"]["HTTPHeaders"]["date"])
    except (KeyError, TypeError, ValueError):
        return None
    return date if date.tzinfo else date.replace(tzinfo=timezone.utc)


def s3_age(response):
    """Return a GET answer's object age in seconds by S3's own clock (``Date`` minus ``Last-Modified``), or None."""
    try:
        date = parsedate_to_datetime(response["ResponseMetadata"]["HTTPHeaders"]["date"])
        modified = response["LastModified"]
    except (KeyError, TypeError, ValueError):
        return None
    date, modified = (d if d.tzinfo else d.replace(tzinfo=timezone.utc) for d in (date, modified))
    return max(0.0, (date - modified).total_seconds())


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def _pid_namespace():
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _started(pid):
    """Return a running process's start time in clock ticks since boot (``/proc/PID/stat`` field 22), or None.

    A zombie (killed, not yet reaped) has ended: it is None too.
    """
    stat = _read(f"/proc/{int(pid)}/stat")
    if not stat:
        return None
    try:
        fields = stat.rsplit(")", 1)[1].split()
        return None if fields[0] in ("Z", "X") else int(fields[19])
    except (IndexError, ValueError):
        return None


def identity():
    """Return this process's holder identity: host, boot id, pid namespace, pid and start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot_id": _read(_BOOT_ID), "pid_ns": _pid_namespace(), "pid": pid,
            "started": _started(pid)}


def holder_gone(holder):
    """Tell whether a holder is a process of this very machine and pid namespace that no longer runs.

    Two containers may share a hostname, and a pid may be reused: the boot id,
    the pid namespace and the process start time must all match before a
    missing or different process counts as the holder gone. Anything else keeps
    its lease until it expires.
    """
    me = identity()
    if not holder or not me["boot_id"] or not me["pid_ns"]:
        return False
    if any(holder.get(k) != me[k] for k in ("host", "boot_id", "pid_ns")) or holder.get("pid") is None:
        return False
    if holder.get("pid") == me["pid"]:
        return False  # this process: its own claims are judged by their runner
    return _started(holder["pid"]) != holder.get("started")


def expired_at_wall(text, now=None):
    """Tell whether a 0.3.0 record's ``lease_expires_at`` has passed on this host's clock (no S3 age known)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment <= (now or datetime.now(timezone.utc))
