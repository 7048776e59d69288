"""Find the asset each language of a video is served from, in the order edx-platform looks for it.

edx-platform (``xmodule/video_block/transcripts_utils.py``) serves a language
from the contentstore, when edx-val has nothing, by trying ids in order: the
video's ``sub``, its ``youtube_id_1_0`` (the XBlock's default when unset), then
its html5 sources' file names without extension. For each id it tries
``subs_{id}.srt.sjson`` (English) or ``{lang}_subs_{id}.srt.sjson``, then the
file the video names for the language in ``transcripts`` (for English, the id
itself). The file ``transcripts`` names for a language comes first here, as
Studio's own upload and edx-val's import use it; empty ids are skipped.
"""

DEFAULT_LANGUAGE = "en"


def html5_ids(sources):
    """Return the ids edx-platform takes from html5 sources: each URL's last segment, without its extension."""
    return [source.split("/")[-1].rsplit(".", 1)[0] for source in sources or [] if isinstance(source, str)]


def subs_filename(subs_id, language=DEFAULT_LANGUAGE):
    """Return edx-platform's asset name for an SJSON transcript of ``subs_id`` in ``language``."""
    return f"subs_{subs_id}.srt.sjson" if language == DEFAULT_LANGUAGE else f"{language}_subs_{subs_id}.srt.sjson"


def named(fields):
    """Return {language: file name} of the video's ``transcripts``, without empty names."""
    transcripts = fields.get("transcripts") or {}
    return {lang: name for lang, name in transcripts.items() if isinstance(name, str) and name}


def languages(fields):
    """Return [(language, claimed)]: each language the video offers; claimed when its fields name a transcript.

    English is offered when ``sub`` is set or no language is named, as the LMS
    offers it; it is claimed only when ``sub`` or ``transcripts`` names it.
    """
    others = named(fields)
    found = {lang: True for lang in others}
    if fields.get("sub") or not others:
        found.setdefault(DEFAULT_LANGUAGE, bool(fields.get("sub")))
    return sorted(found.items())


def candidates(fields, language):
    """Return the asset names to try for ``language``, in order, without repeats."""
    others = named(fields)
    if language != DEFAULT_LANGUAGE and language not in others:
        return []  # edx-platform stops at its KeyError: a language the video does not name has no fallback
    names = [others[language]] if language in others else []
    ids = [fields.get("sub"), fields.get("youtube_id_1_0")] + html5_ids(fields.get("html5_sources"))
    for subs_id in ids:
        if not isinstance(subs_id, str) or not subs_id:
            continue
        names.append(subs_filename(subs_id, language))
        names.append(subs_id if language == DEFAULT_LANGUAGE else others[language])
    return list(dict.fromkeys(names))
