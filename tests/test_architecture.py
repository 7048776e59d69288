"""The package's shape: the layers import only downward, without cycles, and no module outgrows a reader."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = 400  # lines a module may have


def test_the_layers_import_only_downward_and_without_cycles():
    linter = shutil.which("lint-imports")
    if linter is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    run = subprocess.run([linter, "--config", "setup.cfg", "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "2 kept, 0 broken" in run.stdout, run.stdout[-2000:]


def test_no_module_is_over_400_lines():
    long = {}
    for folder, _, files in os.walk(os.path.join(ROOT, "etl")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path) as fh:
                    lines = sum(1 for _ in fh)
                if lines > LIMIT:
                    long[os.path.relpath(path, ROOT)] = lines
    assert not long, long


def test_importing_the_package_loads_neither_celery_nor_the_demo():
    code = "import sys, etl, etl.cli.main; print(sorted(m for m in sys.modules if m.split('.')[0] in ('celery', 'moto', 'mongomock')))"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_the_readme_stays_the_operators_manual_under_45000_characters():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        size = len(fh.read())
    assert size < 45_000, f"README.md is {size} characters; move measurements or arguments to docs/"
