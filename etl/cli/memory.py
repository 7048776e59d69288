"""Set the process's allocators so that a long migration's memory stays near what it holds.

``tune()`` is called once by the CLI's entry point, before any worker thread
starts: glibc's arena limit only binds threads that have not yet allocated.
Importing the package changes nothing. An operator's own environment setting
always wins.
"""

import ctypes
import os
import platform


ARENAS = 2
TRIM_BYTES = 128 * 1024
_M_TRIM_THRESHOLD, _M_ARENA_MAX = -1, -8  # mallopt parameters, from glibc's malloc.h


def tune():
    """Apply both settings below for this process; return what was set."""
    return {**use_system_pool_for_arrow(), **tune_glibc()}


def use_system_pool_for_arrow():
    """Let Arrow allocate from the process allocator, unless ``ARROW_DEFAULT_MEMORY_POOL`` is set.

    Arrow's bundled allocator keeps what it frees for Arrow alone (the README's
    Performance section has the measurement); manifests are small, so the
    process allocator, shared with Python, serves them.
    """
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return {}
    import pyarrow

    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    return {"arrow_pool": "system"}


def tune_glibc():
    """Cap glibc's malloc arenas and fix its trim threshold; return what was set.

    By default glibc gives each new thread its own arena (up to eight per core)
    and raises its trim threshold after large blocks are freed, so memory the
    tool's threads free is kept rather than reused or returned. Leave a setting
    alone when the operator set ``MALLOC_ARENA_MAX`` or ``MALLOC_TRIM_THRESHOLD_``;
    do nothing on other C libraries.
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
