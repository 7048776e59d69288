"""Pace the contentstore's queries: at most ``max_reads_per_second`` start per second, across the process."""

import threading
import time


def read_limiter(cfg):
    """Return the one ReadLimiter every contentstore query of ``cfg`` waits on."""
    return cfg.cached("read_limiter", lambda: ReadLimiter(cfg.max_reads_per_second))


class ReadLimiter:
    """Let at most ``rate`` contentstore queries start per second, across every thread of the process.

    Each query takes the next free slot, ``1 / rate`` seconds after the last one,
    and waits for it; a rate of 0 lets every query go at once.
    """

    def __init__(self, rate, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / rate if rate else 0.0
        self.clock, self.sleep = clock, sleep
        self.next, self.granted = None, 0
        self._lock = threading.Lock()

    def acquire(self):
        """Wait until this query may start."""
        if not self.interval:
            return
        with self._lock:
            now = self.clock()
            start = now if self.next is None or self.next <= now else self.next
            self.next, self.granted = start + self.interval, self.granted + 1
        if start > now:
            self.sleep(start - now)
