"""Transcript checks: the fast SRT pattern never passes a file that pysrt rejects."""

import random

import pysrt
import pytest

from etl.source import transcripts as parse
from etl.demo.sample import cues, srt


def pysrt_verdict(data):
    """Return None when pysrt parses ``data`` strictly with at least one cue, else its error."""
    try:
        found = pysrt.from_string(data.decode("utf-8-sig"), error_handling=pysrt.ERROR_RAISE)
    except (pysrt.Error, UnicodeDecodeError) as exc:
        return str(exc) or type(exc).__name__
    return None if len(found) else "no cues"


VALID = [
    srt(cues(3)),
    srt(cues(3)).replace(b"\n", b"\r\n"),
    b"\xef\xbb\xbf" + srt(cues(2, "BOM first")),
    srt(cues(2)).rstrip(b"\n"),  # no newline at the end
    b"\n\n" + srt(cues(2)) + b"\n \n\t\n",  # blank lines around, some with spaces
    b"1\n00:00:00,000 --> 00:00:01,000\n\n2\n00:00:01,000 --> 00:00:02,000\nno text above\n",
    "1\n00:00:00,000 --> 00:00:01,000\n字幕 – ünïcode\n<i>two</i> lines\n".encode(),
]

INVALID = [
    b"",
    b"this is not\nan srt file\n",
    b"1\n00:00:00 --> 00:00:01\nno milliseconds\n",
    b"1\n00:00:00,000 -> 00:00:01,000\nwrong arrow\n",
    b"\n\n\n",
    b"\xff\xfe\x00bad utf-8",
]


@pytest.mark.parametrize("data", VALID)
def test_well_formed_srt_passes(data):
    assert parse.check_srt(data) is None
    assert pysrt_verdict(data) is None


@pytest.mark.parametrize("data", INVALID)
def test_malformed_srt_is_flagged_with_a_reason(data):
    reason = parse.check_srt(data)
    assert reason and "\n" not in reason


def test_the_fast_pattern_accepts_nothing_pysrt_rejects():
    """Mutate well-formed files at random and compare the pattern with pysrt on every one."""
    rng = random.Random(7)
    base = srt(cues(4, "line")).decode()
    pieces = ["\n", "\r\n", "\r", " ", "\t", "\u3000", "\u2028", "\x85", "\x0b", "-->", ",", ":", "1", "x", "",
              "00:00:05,000 --> 00:00:06,000", "\n\n", "\ufeff"]
    accepted = agreed = 0
    for _ in range(3000):
        text = base
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text) + 1)
            cut = rng.choice([0, 0, 1, 2])
            text = text[:at] + rng.choice(pieces) + text[at + cut:]
        data = text.encode()
        fast = parse._SRT.match(text if text.endswith("\n") else text + "\n") is not None
        if fast:
            accepted += 1
            assert pysrt_verdict(data) is None, repr(text)
        agreed += (parse.check_srt(data) is None) == (pysrt_verdict(data) is None)
    assert accepted > 200  # the comparison exercised the fast path, not only the fallback
    assert agreed == 3000  # and the verdict, fast or not, is always pysrt's
