"""The front door: check a whole command line against its command's signature before anything is read or written.

Every problem is a ``UsageError`` (exit 2) naming it: an unknown command or flag
(with the closest valid one), a missing or extra argument, a flag without its
value, a value of the wrong type or outside its choices. Help is generated
from the same signatures and docstrings.
"""

import difflib
import inspect
from dataclasses import dataclass
from typing import Any

from etl._version import __version__
from etl.cli.commands import COMMANDS, SETTINGS, dashed
from etl.model.errors import EXIT_CODES, UsageError


MINIMUM = {"s3_concurrency": 1, "concurrency": 1, "workers": 1, "retries": 0, "retain_days": 0}


SHORT = {"-o": "output", "-h": "help"}


LOCAL_SETTINGS = ("quiet", "log_format", "debug")  # all a command that touches neither S3 nor MongoDB uses


def parse(argv):
    """Check a command line against its command's signature; return it checked, as a ``Parsed``.

    Raise UsageError naming the first problem: an unknown command or flag (with
    the closest valid one), a missing or extra argument, a flag without its value,
    a value of the wrong type or outside its choices.
    """
    if not argv or argv[0] in ("-h", "--help", "help"):
        raise HelpWanted(None)
    name, tokens = argv[0], argv[1:]
    if name not in COMMANDS:
        raise UsageError(f"unknown command {name!r}{_closest(name, COMMANDS)}; run `python -m etl --help` for the list")
    cmd = COMMANDS[name]
    flags, args, values, raw, i = cmd.flags, [], {}, {}, 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token in ("-h", "--help"):
            raise HelpWanted(cmd)
        if token == "--":
            args.extend(tokens[i:])
            break
        if not token.startswith("-") or token == "-" or token[1:2].isdigit():
            args.append(token)
            continue
        flag, has_value, value = token.partition("=")
        key = SHORT.get(flag) if not flag.startswith("--") else flag[2:].replace("-", "_")
        if key not in flags:
            known = [dashed(f) for f in flags]
            raise UsageError(f"{name}: unknown flag {flag}{_closest(flag, known)}; "
                             f"run `python -m etl {name} --help` for its flags")
        default, choices = flags[key]
        if key in values:
            raise UsageError(f"{name}: {dashed(key)} is given twice")
        if isinstance(default, bool):
            if has_value:
                raise UsageError(f"{name}: {dashed(key)} is a switch and takes no value (got {value!r})")
            values[key] = True
            continue
        if not has_value:
            if i >= len(tokens) or (tokens[i].startswith("--") and len(tokens[i]) > 2):
                raise UsageError(f"{name}: {dashed(key)} needs a value")
            value = tokens[i]
            i += 1
        values[key], raw[key] = _typed(name, key, value, default, choices), value
    _check_arguments(cmd, args)
    if cmd.check:
        cmd.check(args, values)
    settings = {s.name: values.pop(s.name, s.default) for s in SETTINGS}
    return Parsed(cmd, args, values, settings, raw)


@dataclass(frozen=True)
class Parsed:
    """A checked command line: the command, its arguments and flags (typed), the settings, and the flags as typed."""

    cmd: Any
    args: list
    values: dict
    settings: dict
    raw: dict  # each valued flag as the operator wrote it

    def tokens(self):
        """Return the command's own arguments and flags as the operator gave them, for python-fire to bind."""
        own = {p.name for p in self.cmd.params if p.kind == p.KEYWORD_ONLY}
        flags = [f"--{k}" if v is True else f"--{k}={self.raw[k]}" for k, v in self.values.items() if k in own]
        return list(self.args) + flags


class HelpWanted(Exception):
    """The operator asked for help (``cmd`` None: the list of commands)."""

    def __init__(self, cmd):
        super().__init__(cmd)
        self.cmd = cmd


def _closest(word, candidates):
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def _typed(name, key, value, default, choices):
    if isinstance(default, int):
        try:
            number = int(value)
        except ValueError:
            raise UsageError(f"{name}: {dashed(key)} takes a whole number, not {value!r}") from None
        if number < MINIMUM.get(key, 0):
            raise UsageError(f"{name}: {dashed(key)} must be at least {MINIMUM.get(key, 0)}, not {number}")
        return number
    if choices and value not in choices:
        raise UsageError(f"{name}: {dashed(key)} is one of {', '.join(choices)}, not {value!r}")
    return value


def _check_arguments(cmd, args):
    fixed = [p for p in cmd.arguments if p.kind == p.POSITIONAL_OR_KEYWORD]
    required = [p for p in fixed if p.default is p.empty]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in cmd.arguments)
    if len(args) < len(required):
        raise UsageError(f"{cmd.name}: missing {_word(required[len(args)])}; "
                         f"usage: {usage(cmd)}")
    if not varargs and len(args) > len(fixed):
        raise UsageError(f"{cmd.name}: unexpected argument {args[len(fixed)]!r}; usage: {usage(cmd)}")


def _word(param):
    """Return how a positional parameter reads on the command line: course_id is COURSE."""
    return param.name.upper().removesuffix("_ID")


def usage(cmd):
    """Return a command's one-line usage."""
    parts = [f"python -m etl {cmd.name}"]
    for p in cmd.arguments:
        word = _word(p)
        parts.append(f"[{word}...]" if p.kind == p.VAR_POSITIONAL else word if p.default is p.empty else f"[{word}]")
    for key, (default, choices) in cmd.flags.items():
        if key in {s.name for s in SETTINGS}:
            continue
        parts.append(f"[{dashed(key)}]" if isinstance(default, bool)
                     else f"[{dashed(key)} {'|'.join(choices) if choices else key.upper()}]")
    return " ".join(parts) + " [settings]"


def _doc_sections(fn):
    """Return (summary paragraphs, {parameter: help}) from a docstring."""
    doc = inspect.getdoc(fn) or ""
    text, _, args = doc.partition("Args:")
    helps = {}
    for line in args.splitlines():
        name, sep, rest = line.strip().partition(": ")
        if sep and name.isidentifier():
            helps[name] = rest
    return text.strip(), helps


def _with_default(text, default):
    """Append a flag's default to its help, unless the help says it already or there is none to say."""
    if isinstance(default, bool) or default in (None, "", inspect.Parameter.empty) or "default" in text:
        return text
    return f"{text.rstrip('.')} (default {default})."


WIDTH = 24  # the widest flag, --max-reads-per-second, and a space


def help_text(cmd=None):
    """Return the help of one command, or of the tool: generated from the signatures and docstrings."""
    relevant = [s for s in SETTINGS if cmd is None or cmd.s3 or cmd.contentstore or s.name in LOCAL_SETTINGS]
    settings = "\n".join(f"  {dashed(s.name):<{WIDTH}} {_with_default(s.help, s.default)}" for s in relevant)
    codes = "\n".join(f"  {code:<4} {what}" for code, what in EXIT_CODES.items())
    if cmd is None:
        lines = [f"etl {__version__}: move Open edX video transcripts from the contentstore to S3, "
                 "one course per transaction.", "", "usage: python -m etl COMMAND [ARGS] [--flags]", "", "commands:"]
        lines += [f"  {c.name:<10} {_doc_sections(c.fn)[0].splitlines()[0]}" for c in COMMANDS.values()]
        lines += ["", "settings (every command; a flag wins over the environment; AWS credentials come from "
                  "boto3's usual chain):", settings, "", "exit codes:", codes, "",
                  "Run `python -m etl COMMAND --help` for a command's arguments and flags."]
        return "\n".join(lines)
    summary, helps = _doc_sections(cmd.fn)
    lines = [f"usage: {usage(cmd)}", "", summary.split("\n\n")[0], ""]  # the first paragraph, as alembic does
    own = [(_word(p) if p.kind != p.KEYWORD_ONLY else dashed(p.name),
            _with_default(helps.get(p.name, ""), p.default if p.kind == p.KEYWORD_ONLY else None))
           for p in cmd.params]
    if cmd.formats:
        own.append(("--format", f"{' or '.join(cmd.formats)} (default {cmd.formats[0]})."))
    if own:
        lines.append("arguments and flags:")
        lines += [f"  {label:<{WIDTH}} {text}" for label, text in own]
        lines.append("")
    lines += ["settings:", settings, "", "exit codes:", codes]
    return "\n".join(lines)
