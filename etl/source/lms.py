"""Answer a learner's transcript requests exactly as the LMS answers them, from edx-val and the contentstore.

A step-by-step port of openedx-platform's ``xmodule/video_block/transcripts_utils.py``
(``get_transcript``, ``get_transcript_from_val``, ``get_transcript_from_contentstore``,
``get_transcript_for_video``, ``Transcript.convert``, ``get_transcripts_info``,
``available_translations``, ``get_default_transcript_language``) and of the video
block's ``transcript`` handler (``translation``, ``download``,
``available_translations``). It reads through two views: ``val`` (edx-val's
``get_available_transcript_languages`` and ``get_video_transcript_data``) and
``assets`` (the course's contentstore, by the name ``compute_location`` cleans).

``snapshot`` collects every answer a block gives, for every language it could
be asked for and every format, so that two states of a site (before and after a
registration) can be compared answer by answer: registration must not change one.
"""

import html
import json
import os

import pysrt

from etl.source import resolve

NON_EXISTENT = "non_existent_dummy_file_name"  # the LMS's stand-in name for a language only edx-val has
SRT, SJSON, TXT = "srt", "sjson", "txt"
MIME_TYPES = {SRT: "application/x-subrip; charset=utf-8", TXT: "text/plain; charset=utf-8", SJSON: "application/json"}
SPEEDS = (("youtube_id_0_75", 0.75), ("youtube_id_1_0", 1.0), ("youtube_id_1_25", 1.25), ("youtube_id_1_5", 1.5))
ERROR_SJSON = '{"start": [1],"end": [2],"text": ["An error occured obtaining the transcript."]}'


class NotFound(Exception):
    """The LMS's ``NotFoundError``: a 404, or the contentstore's turn after edx-val."""


class GenerationError(Exception):
    """The LMS's ``TranscriptsGenerationException``: an SRT that does not parse, turned into a 404."""


class NoVal:
    """edx-val with no rows: what the LMS reads for a video edx-val knows nothing of."""

    def languages(self, video_id):
        return []

    def data(self, video_id, language):
        return None


def clean_video_id(video_id):
    return video_id.strip() if isinstance(video_id, str) else video_id


def youtube_speeds(fields):
    """Return {youtube id: speed} for the speed ids a block sets (``youtube_speed_dict``)."""
    return {fields.get(name): speed for name, speed in SPEEDS if fields.get(name)}


def convert(content, input_format, output_format):
    """Convert transcript ``content`` as ``Transcript.convert`` does (same input and output: as given)."""
    assert input_format in (SRT, SJSON) and output_format in (TXT, SRT, SJSON)
    if input_format == output_format:
        return content
    if input_format == SRT:
        if isinstance(content, str):
            content = content.encode("utf-8")
        if output_format == TXT:
            return html.unescape(pysrt.SubRipFile.from_string(content.decode("utf-8")).text)
        try:
            subs = pysrt.SubRipFile.from_string(content.decode("utf-8-sig"), error_handling=pysrt.SubRipFile.ERROR_RAISE)
        except pysrt.Error as exc:
            raise GenerationError(str(exc)) from exc
        return json.dumps({"start": [s.start.ordinal for s in subs], "end": [s.end.ordinal for s in subs],
                           "text": [s.text.replace("\n", " ") for s in subs]})
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            content = content.decode("latin-1")
    try:
        doc = json.loads(content)
    except ValueError:
        doc = json.loads(ERROR_SJSON)
    if output_format == TXT:
        return html.unescape("\n".join(line if line else "" for line in doc["text"]))
    return _srt_from_sjson(doc)


def _srt_from_sjson(doc):
    if not len(doc["start"]) == len(doc["end"]) == len(doc["text"]):
        return ""
    items = (pysrt.SubRipItem(index=i, start=pysrt.SubRipTime(milliseconds=doc["start"][i]),
                              end=pysrt.SubRipTime(milliseconds=doc["end"][i]), text=doc["text"][i])
             for i in range(len(doc["start"])))
    return "".join(f"{item}\n" for item in items)


def scale(speed, subs):
    """Return SJSON cues for ``speed`` from cues at speed 1 (``generate_subs``)."""
    if speed == 1:
        return subs
    return {"start": [int(round(t * speed)) for t in subs["start"]],
            "end": [int(round(t * speed)) for t in subs["end"]], "text": subs["text"]}


def transcripts_info(fields, val):
    """Return {"sub", "transcripts"} as ``get_transcripts_info`` does: named files, then edx-val's languages."""
    sub = fields.get("sub") or ""
    transcripts = {lang: name for lang, name in (fields.get("transcripts") or {}).items() if name != ""}
    for language in val.languages(clean_video_id(fields.get("edx_video_id"))) if clean_video_id(
            fields.get("edx_video_id")) else []:
        if language == resolve.DEFAULT_LANGUAGE and not sub:
            sub = NON_EXISTENT
        elif not transcripts.get(language):
            transcripts[language] = NON_EXISTENT
    return {"sub": sub, "transcripts": transcripts}


def default_language(info, preferred=resolve.DEFAULT_LANGUAGE):
    """Return the language a download without ``lang`` serves (``get_default_transcript_language``)."""
    sub, others = info["sub"], info["transcripts"]
    if preferred in others:
        return preferred
    if sub:
        return resolve.DEFAULT_LANGUAGE
    return sorted(others)[0] if others else resolve.DEFAULT_LANGUAGE


def get_transcript(fields, val, assets, language=None, output_format=SRT, youtube_id=None):
    """Return (content, mimetype) as ``get_transcript`` does: edx-val first, then the contentstore."""
    info = transcripts_info(fields, val)
    language = language or default_language(info)
    video_id = clean_video_id(fields.get("edx_video_id"))
    try:
        if not video_id:
            raise NotFound
        return _from_val(val, video_id, language, output_format)
    except NotFound:
        return _from_contentstore(fields, assets, language, output_format, info, youtube_id)


def _from_val(val, video_id, language, output_format):
    try:
        try:
            found = val.data(video_id, language)
        except ValueError:  # edx-val's storage answered with a ValueError: the LMS serves an error transcript
            found = {"file_name": "error.srt", "content": convert(ERROR_SJSON, SJSON, SRT)}
        if not found:
            raise NotFound
        input_format = os.path.splitext(found["file_name"])[1][1:]
        return convert(found["content"], input_format, output_format), MIME_TYPES[output_format]
    except (GenerationError, UnicodeDecodeError):
        raise NotFound from None


def _asset(assets, subs_id, language, filename=None):
    """``Transcript.asset``: the named asset's bytes, or NotFound."""
    if NON_EXISTENT in (subs_id, filename):
        raise NotFound
    data = assets(resolve.asset_name(filename or resolve.subs_filename(subs_id, language)))
    if data is None:
        raise NotFound
    return data


def _for_video(assets, subs_id, file_name, language):
    """``get_transcript_for_video``: (input format, content) of the SJSON asset of ``subs_id``, else the named file."""
    try:
        if subs_id is None:
            raise NotFound
        return SJSON, _asset(assets, subs_id, language).decode("utf-8")
    except NotFound:
        content = _asset(assets, None, language, file_name).decode("utf-8")
        os.path.splitext(file_name)  # the LMS takes the base name here: a None name fails (a 500)
        return SRT, content


def _from_contentstore(fields, assets, language, output_format, info, youtube_id=None):
    try:
        transcripts = dict(info["transcripts"])
        ids = [youtube_id, info["sub"], fields.get("youtube_id_1_0")] + resolve.html5_ids(fields.get("html5_sources"))
        for sub_id in ids:
            try:
                transcripts[resolve.DEFAULT_LANGUAGE] = sub_id
                input_format, content = _for_video(assets, sub_id, transcripts[language], language)
                break
            except (KeyError, NotFound):
                continue
        else:
            raise NotFound
        content = convert(content, input_format, output_format)
        if not content.strip():
            raise NotFound
        if youtube_id:
            content = json.dumps(scale(youtube_speeds(fields).get(youtube_id, 1), json.loads(content)))
        return content, MIME_TYPES[output_format]
    except (GenerationError, UnicodeDecodeError):
        raise NotFound from None


def available_translations(fields, val, assets, verify=True):
    """Return the sorted languages a block lists (``available_translations``), checking each when ``verify``."""
    info = transcripts_info(fields, val)
    sub, others = info["sub"], info["transcripts"]
    if not verify:
        found = list(others)
        return sorted(set(found + [resolve.DEFAULT_LANGUAGE] if not found or sub else found))
    candidates = dict(others, **({resolve.DEFAULT_LANGUAGE: sub} if sub else {}))
    found = []
    for language in candidates:
        try:
            get_transcript(fields, val, assets, language)
        except NotFound:
            continue
        found.append(language)
    return sorted(set(found))


def _answer(fn):
    """Return what a request answers: ("ok", body bytes), ("404",) or ("500", the exception's type)."""
    try:
        content, mimetype = fn()
    except NotFound:
        return ("404",)
    except Exception as exc:  # anything else the LMS does not catch is a server error
        return ("500", type(exc).__name__)
    return ("ok", content if isinstance(content, bytes) else content.encode("utf-8"), mimetype)


def snapshot(fields, val, assets, languages=()):
    """Return every answer the block's transcript handler gives, keyed by request.

    The requests: the language list, checked and from the fields; the default
    language; and for each language the block offers, each in ``languages``,
    and English: ``translation`` (SJSON; also with each YouTube id as
    ``videoId``, whose answer the player parses, so it is kept parsed) and
    ``download`` as SRT and as text, with and without a language.
    """
    info = transcripts_info(fields, val)
    offered = [resolve.DEFAULT_LANGUAGE] + list(info["transcripts"])
    answers = {("languages", True): _answer(lambda: (json.dumps(available_translations(fields, val, assets)), "")),
               ("languages", False): ("ok", available_translations(fields, val, assets, verify=False)),
               ("default",): ("ok", default_language(info))}
    for language in sorted(set(offered) | set(languages)):
        if language in offered:  # the handler answers 404 for any other language before it looks
            answers[("translation", language)] = _answer(
                lambda: get_transcript(fields, val, assets, language, SJSON))
            for youtube_id in youtube_speeds(fields):
                answer = _answer(lambda: get_transcript(fields, val, assets, language, SJSON, youtube_id))
                answers[("translation", language, youtube_id)] = _parsed(answer)
        for fmt in (SRT, TXT):
            answers[("download", language, fmt)] = _answer(lambda: get_transcript(fields, val, assets, language, fmt))
    for fmt in (SRT, TXT):
        answers[("download", None, fmt)] = _answer(lambda: get_transcript(fields, val, assets, None, fmt))
    return answers


def _parsed(answer):
    if answer[0] != "ok":
        return answer
    try:
        return ("ok", json.loads(answer[1]))
    except ValueError:
        return answer


def differences(before, after):
    """Return the requests whose answers differ between two snapshots, sorted."""
    return sorted((k for k in set(before) | set(after) if before.get(k) != after.get(k)), key=repr)
