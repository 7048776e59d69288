"""Set the process's allocators so that a long migration's memory stays near what it holds.

The package imports this module first: Arrow reads its setting once, when pyarrow
is imported, and glibc's arena limit only binds threads that have not yet
allocated. An operator's own environment setting always wins.
"""

import ctypes
import os
import platform

# Arrow's bundled allocator keeps what it frees for Arrow alone: over a third of the tool's peak RSS
# in the benchmark. Manifests are small, so the process allocator, shared with Python, serves them.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

ARENAS = 2
TRIM_BYTES = 128 * 1024
_M_TRIM_THRESHOLD, _M_ARENA_MAX = -1, -8  # mallopt parameters, from glibc's malloc.h


def tune_glibc():
    """Cap glibc's malloc arenas and fix its trim threshold; return what was set.

    By default glibc gives each new thread its own arena (up to eight per core)
    and raises its trim threshold after large blocks are freed, so memory the
    tool's threads free is kept rather than reused or returned: most of its RSS
    growth per transcript in the benchmark. Leave a setting alone when the
    operator set ``MALLOC_ARENA_MAX`` or ``MALLOC_TRIM_THRESHOLD_``; do nothing
    on other C libraries.
    """
    if platform.libc_ver()[0] != "glibc":
        return {}
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):
        return {}
    applied = {}
    if "MALLOC_ARENA_MAX" not in os.environ and mallopt(_M_ARENA_MAX, ARENAS) == 1:
        applied["arena_max"] = ARENAS
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ and mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES) == 1:
        applied["trim_threshold"] = TRIM_BYTES
    return applied


GLIBC = tune_glibc()
