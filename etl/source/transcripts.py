"""Parse transcripts to report problems; the bytes always migrate exactly as stored."""

import json
import re

import pysrt


_LANG = r"[a-z]{2,3}(?:[_-][A-Za-z]{2,4})?"

# A strict pattern for well-formed SRT: numbered cues, "HH:MM:SS,mmm --> HH:MM:SS,mmm",
# text lines, blank lines between cues. Whatever it accepts pysrt accepts too, so a
# match settles a file in a fraction of a millisecond; anything else gets pysrt's
# full parse (about 20 ms for 10 KB) and its reason. Only \n and \r\n end lines here;
# a file with any other break str.splitlines knows is left to pysrt.
_BREAKS = "\r\n\v\f\x1c-\x1e\x85\u2028\u2029"
_NL, _WS, _CH = r"\r?\n", rf"[^\S{_BREAKS}]", rf"[^{_BREAKS}]"
_BLANK = rf"{_WS}*{_NL}"
_TIME = r"[0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}"
_CUE = rf"{_WS}*[0-9]+{_WS}*{_NL}{_TIME} --> {_TIME}[ \t]*{_NL}(?:{_WS}*\S{_CH}*{_NL})*"
_SRT = re.compile(rf"(?:{_BLANK})*{_CUE}(?:(?:{_BLANK})+{_CUE})*(?:{_BLANK})*\Z")
_LANG_PREFIX = re.compile(rf"^({_LANG})_subs_", re.I)
_LANG_SUFFIX = re.compile(rf"-({_LANG})\.srt$", re.I)


def transcript_format(name):
    """Return 'sjson' or 'srt' from a transcript's name."""
    return "sjson" if name.lower().endswith(".sjson") else "srt" if name.lower().endswith(".srt") else "other"


def language(name):
    """Guess a transcript's language from Open edX's naming conventions, or None.

    ``{lang}_subs_{id}.srt.sjson`` and ``{video_id}-{lang}.srt`` name it; plain
    ``subs_{id}.srt.sjson`` is the default English track.
    """
    match = _LANG_PREFIX.match(name)
    if match:
        return match.group(1)
    if name.lower().startswith("subs_"):
        return "en"
    match = _LANG_SUFFIX.search(name)
    return match.group(1) if match else None


def check_sjson(data):
    """Return None when ``data`` is valid SJSON, else a one-line reason."""
    if not data:
        return "empty file"
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte {exc.start})"
    except ValueError as exc:
        return f"not JSON: {exc.msg} at line {exc.lineno}"
    if not isinstance(doc, dict):
        return "not a JSON object"
    missing = [k for k in ("start", "end", "text") if not isinstance(doc.get(k), list)]
    if missing:
        return f"no {', '.join(missing)} list"
    lengths = {k: len(doc[k]) for k in ("start", "end", "text")}
    if len(set(lengths.values())) != 1:
        return "start, end and text lists differ in length (" + ", ".join(f"{k}={v}" for k, v in lengths.items()) + ")"
    if not lengths["start"]:
        return "no SJSON cues"  # as an SRT with none: the LMS answers 404 for it in SRT and text
    return None


def check_srt(data):
    """Return None when ``data`` is a valid SRT file with at least one cue, else a one-line reason."""
    if not data:
        return "empty file"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 (byte {exc.start})"
    if _SRT.match(text if text.endswith("\n") else text + "\n"):
        return None
    try:
        cues = pysrt.from_string(text, error_handling=pysrt.ERROR_RAISE)
    except pysrt.Error as exc:
        return "bad SRT cue: " + " ".join(str(exc).split())[:160]
    return None if len(cues) else "no SRT cues"


def check(name, data):
    """Return (ok, error) for one transcript's bytes."""
    fmt = transcript_format(name)
    error = check_sjson(data) if fmt == "sjson" else check_srt(data) if fmt == "srt" else None
    return error is None, error


def sniff(data):
    """Return (format, error): 'sjson' or 'srt' by what the bytes parse as, whatever the name says."""
    sjson_error = check_sjson(data)
    if sjson_error is None:
        return "sjson", None
    srt_error = check_srt(data)
    if srt_error is None:
        return "srt", None
    return None, f"neither SJSON ({sjson_error}) nor SRT ({srt_error})"
