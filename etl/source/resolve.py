"""Find the asset each language of a video is served from, exactly as the LMS finds it in the contentstore.

This follows openedx-platform's ``get_transcript_from_contentstore``
(``xmodule/video_block/transcripts_utils.py``) step by step. For each id in
``[None, sub, youtube_id_1_0] + html5 ids`` the LMS sets ``transcripts['en']``
to that id (so a name the video gives English is never used), stops at a
``KeyError`` for a language the video does not name, then tries the SJSON asset
``subs_{id}.srt.sjson`` (``{lang}_subs_{id}.srt.sjson``), then the language's
file name, read as SRT. Names are cleaned as ``StaticContent.compute_location``
cleans them, because that is how the contentstore stored them. The first asset
found is served, whatever its bytes turn out to be.
"""

from opaque_keys.edx.locator import AssetLocator

DEFAULT_LANGUAGE = "en"
SJSON, SRT = "sjson", "srt"


def html5_ids(sources):
    """Return the ids edx-platform takes from html5 sources: each URL's last segment, without its extension."""
    return [source.split("/")[-1].rsplit(".", 1)[0] for source in sources or [] if isinstance(source, str)]


def subs_filename(subs_id, language=DEFAULT_LANGUAGE):
    """Return edx-platform's asset name for an SJSON transcript of ``subs_id`` in ``language``."""
    return f"subs_{subs_id}.srt.sjson" if language == DEFAULT_LANGUAGE else f"{language}_subs_{subs_id}.srt.sjson"


def asset_name(path):
    """Return the name the contentstore keeps ``path`` under (``StaticContent.compute_location``)."""
    return AssetLocator.clean_keeping_underscores(path.replace("/", "_"))


def named(fields):
    """Return {language: file name} as ``get_transcripts_info`` gives it: names that are not ''."""
    transcripts = fields.get("transcripts") or {}
    return {lang: name for lang, name in transcripts.items() if name != "" and isinstance(lang, str)}


def languages(fields):
    """Return [(language, claimed)]: each language the LMS offers; claimed when the fields name a transcript.

    As ``available_translations`` without asset checks: every named language,
    and English when ``sub`` is set or no language is named. English is claimed
    only when ``sub`` is set, since the LMS never reads ``transcripts['en']``.
    """
    names = named(fields)
    others = {lang: True for lang in names if lang != DEFAULT_LANGUAGE}
    if fields.get("sub") or not names:
        others[DEFAULT_LANGUAGE] = bool(fields.get("sub"))
    elif DEFAULT_LANGUAGE in names:
        others[DEFAULT_LANGUAGE] = False  # offered, as the LMS lists it, but served only through the ids
    return sorted(others.items())


def candidates(fields, language):
    """Return [(asset name, format the LMS reads it as)] in the order the LMS tries them, without repeats.

    A format of None marks a name the LMS fails on when it finds it: it answers an error, not a transcript.
    """
    transcripts = dict(named(fields))
    ids = [None, fields.get("sub"), fields.get("youtube_id_1_0")] + html5_ids(fields.get("html5_sources"))
    found = []
    for subs_id in ids:
        transcripts[DEFAULT_LANGUAGE] = subs_id
        if language not in transcripts:
            continue  # the LMS's KeyError: a language the video does not name has no fallback
        file_name = transcripts[language]
        if subs_id is not None:
            found.append((asset_name(subs_filename(subs_id, language)), SJSON))
        if file_name is None:  # the LMS looks up subs_None.srt.sjson, and if found fails on its base name
            found.append((asset_name(subs_filename(None, language)), None))
        elif isinstance(file_name, str):  # an empty name makes the LMS look up the SJSON name of the id None, as SRT
            found.append((asset_name(file_name or subs_filename(None, language)), SRT))
    return list(dict.fromkeys(found))
