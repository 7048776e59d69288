"""The README is the operator's manual: its commands, its commit marker and its log lines match the tool.

Each example block that can run here is checked against what the tool really
does, so the manual cannot drift from the code again: every ``python -m etl``
line of the README parses as the CLI parses it, the commit marker example has
the keys and the version a real commit has, and the log example has the shape
of the lines a real run prints.
"""

import json
import os
import re

import etl
from etl.cli.front import parse
from tests.conftest import COURSE, fill

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        return fh.read()


def blocks(kind):
    """Return the README's fenced blocks of ``kind`` (sh, json, or '' for untyped), with their text."""
    found, current, inside = [], [], None
    for line in readme().splitlines():
        fence = re.match(r"^ *```(\w*)$", line)
        if fence and inside is None:
            inside, current = fence.group(1), []
        elif fence:
            if inside == kind:
                found.append("\n".join(current))
            inside = None
        elif inside is not None:
            current.append(line.strip())
    return found


def commands():
    """Return each ``python -m etl`` command line of the README's sh blocks, as tokens, placeholders filled."""
    found = []
    for block in blocks("sh"):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if not line.startswith("python -m etl ") or "COMMAND" in line:
                continue
            line = re.sub(r"\[([^\]]*)\]", r"\1", line)  # optional parts: given
            line = re.sub(r"\s+\d?>.*$", "", line.replace("…", "x"))  # shell redirections are the shell's
            tokens = re.findall(r"'[^']*'|\S+", line)[3:]
            found.append([t.strip("'") for t in tokens])
    return found


def test_every_command_line_in_the_readme_parses_as_the_cli_parses_it():
    found = commands()
    assert len(found) > 20
    for tokens in found:
        if tokens[:1] == ["diff"] and len(tokens) > 2 and tokens[1].endswith(".parquet"):
            tokens = tokens[:3]  # two manifests
        parsed = parse(tokens)  # raises UsageError (exit 2) for an unknown flag, a bad value, a stray argument
        assert parsed.cmd.name == tokens[0], tokens


def test_the_commit_marker_example_is_a_real_commit(cfg, contentstore):
    fill(contentstore)
    etl.extract(cfg, COURSE)
    etl.promote(cfg, COURSE)
    real = etl.committed(cfg, COURSE)
    example = next(b for b in blocks("json") if '"status": "committed"' in b)
    shown = json.loads(example.replace("…", "x"))
    assert set(shown) == set(real), set(shown) ^ set(real)
    assert shown["tool_version"] == etl.__version__ and shown["epoch"] == real["epoch"] == 2
    assert shown["format"] == real["format"] and shown["status"] == real["status"]


def shape(line):
    """Return a log line with its values masked: what a README example and a real line must share."""
    line = re.sub(r"^\S+Z ", "TIME ", line)
    line = re.sub(r'="(?:[^"\\]|\\.)*"', "=QUOTED", line)
    return re.sub(r"=[^ \"]+", "=VALUE", line)


def test_the_log_example_has_the_shape_of_real_lines(cfg, contentstore, tmp_path, capsys):
    from etl.cli.main import main

    fill(contentstore)
    example = next(b for b in blocks("") if " event=parse_problem " in b).strip().splitlines()
    main(["migrate", COURSE, "--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url, "--manifest-dir",
          str(tmp_path)], contentstore=contentstore)
    real = capsys.readouterr().err.splitlines()
    for shown in example:
        event = re.search(r" event=(\S+)", shown).group(1)
        level = shown.split()[1]
        matching = [line for line in real if f" event={event} " in line and f" {level} " in line]
        assert matching, (event, level, real[:5])
        fields = lambda line: re.findall(r" ([a-z_]+)=", line)  # noqa: E731
        wanted = [line for line in matching if fields(line) == fields(shown)]
        assert wanted, (shown, matching)
        assert shape(shown) == shape(wanted[0]), (shown, wanted[0])
