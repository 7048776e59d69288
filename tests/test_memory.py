"""The allocator settings the CLI's entry point makes (importing the package makes none), each seen fresh."""

import os
import platform
import subprocess
import sys

import pytest

OPERATOR_SETTINGS = ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_")

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


TUNE = "import json, etl.cli.memory as m; print(json.dumps(m.tune()))"
CLI_TUNES = ("import contextlib, io, json\nfrom etl.cli import main as cli, memory\nseen = []\n"
             "real = memory.tune\nmemory.tune = lambda: seen.append(real())\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n    cli.main(['version'])\nprint(json.dumps(seen))")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_the_cli_caps_glibcs_arenas_and_trim_threshold_once_unless_the_operator_chose_otherwise():
    import json

    assert json.loads(run(CLI_TUNES).stdout) == [{"arrow_pool": "system", "arena_max": 2, "trim_threshold": 128 * 1024}]
    assert json.loads(run(TUNE, MALLOC_ARENA_MAX="4").stdout) == {"arrow_pool": "system", "trim_threshold": 131072}
    assert json.loads(run(TUNE, MALLOC_TRIM_THRESHOLD_=str(64 << 20), ARROW_DEFAULT_MEMORY_POOL="jemalloc").stdout) \
        == {"arena_max": 2}


def test_other_c_libraries_are_left_alone(monkeypatch):
    from etl.cli import memory

    monkeypatch.setattr(memory.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert memory.tune_glibc() == {}
