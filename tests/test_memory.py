"""The allocator settings the CLI's entry point makes (importing the package makes none), each seen fresh."""

import os
import platform
import subprocess
import sys

import pytest

OPERATOR_SETTINGS = ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_")

# Free 5 MB at the top of the heap after a large block (which raises glibc's default trim threshold
# to 8 MiB), then let six threads allocate, and report what glibc keeps and how many arenas it made.
GLIBC_PROBE = """
import ctypes, sys, threading
if sys.argv[1] == "etl":
    import contextlib, io
    from etl.cli import main as cli
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main(["version"])
class Info(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
big = bytes(4 << 20); del big
held = [bytes(2000) for _ in range(2500)]; del held
print(libc.mallinfo2().keepcost, flush=True)
go = threading.Barrier(6)
def work():
    go.wait(); kept = [bytes(100_000) for _ in range(3)]
threads = [threading.Thread(target=work) for _ in range(6)]
[t.start() for t in threads]; [t.join() for t in threads]
libc.malloc_stats()
"""


def run(code, *args, **env):
    clean = {k: v for k, v in os.environ.items() if k not in OPERATOR_SETTINGS}
    return subprocess.run([sys.executable, "-c", code, *args], env={**clean, **env}, capture_output=True,
                          text=True, check=True)


CLI_POOL = ("import contextlib, io, pyarrow\nfrom etl.cli import main as cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    cli.main(['version'])\n"
            "print(pyarrow.default_memory_pool().backend_name)")


def test_arrow_uses_the_process_allocator_under_the_cli_unless_the_operator_chose_one():
    assert run(CLI_POOL).stdout.strip() == "system"
    assert run(CLI_POOL, ARROW_DEFAULT_MEMORY_POOL="mimalloc").stdout.strip() == "mimalloc"


def test_importing_the_package_changes_nothing_in_the_process():
    probe = ("import os, pyarrow; before = pyarrow.default_memory_pool().backend_name; env = dict(os.environ)\n"
             "import etl\nprint(pyarrow.default_memory_pool().backend_name == before, dict(os.environ) == env)")
    assert run(probe).stdout.split() == ["True", "True"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_glibc_returns_freed_memory_and_keeps_two_arenas_unless_the_operator_chose_otherwise():
    def probe(*args, **env):
        out = run(GLIBC_PROBE, *args, **env)
        return int(out.stdout.split()[0]), out.stderr.count("Arena ")

    kept, arenas = probe("plain")
    assert kept > 4_000_000 and arenas == 7  # glibc's defaults: the freed 5 MB stays, one arena per thread
    kept, arenas = probe("etl")
    assert kept < 1_000_000 and arenas == 2
    kept, arenas = probe("etl", MALLOC_ARENA_MAX="4", MALLOC_TRIM_THRESHOLD_=str(64 << 20))
    assert kept > 4_000_000 and arenas == 4
