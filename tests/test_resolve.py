"""The resolver finds, for every field combination, the asset the LMS's contentstore fallback would serve.

The oracle below follows openedx-platform's ``get_transcript_from_contentstore``
and ``get_transcript_for_video`` (xmodule/video_block/transcripts_utils.py) step
by step, against a contentstore that is a set of cleaned asset names. The
resolver must agree with it on the first asset found, and on the format it is
read as, for every combination of the fields that matter.
"""

import itertools

import pytest

from etl.source import resolve

pytestmark = pytest.mark.unit


class NotFound(Exception):
    pass


def oracle(fields, language, stored):
    """Return (asset name, format) the LMS serves from ``stored``, or None; raise TypeError where the LMS would."""
    def find(filename):
        name = resolve.asset_name(filename)
        if name not in stored:
            raise NotFound(name)
        return name

    def asset(subs_id, lang, filename=None):
        return find(resolve.subs_filename(subs_id, lang) if not filename else filename)

    def for_video(subs_id, file_name, lang):
        try:
            if subs_id is None:
                raise NotFound
            return asset(subs_id, lang), "sjson"
        except NotFound:
            found = asset(None, lang, file_name)
            file_name.rsplit(".", 1)  # the LMS's os.path.splitext: a None name fails here
            return found, "srt"

    transcripts = {k: v for k, v in (fields.get("transcripts") or {}).items() if v != ""}
    ids = [None, fields.get("sub", ""), fields.get("youtube_id_1_0", "3_yD_cEKoCk")]
    ids += [s.split("/")[-1].rsplit(".", 1)[0] for s in fields.get("html5_sources") or []]
    for sub_id in ids:
        try:
            transcripts["en"] = sub_id
            return for_video(sub_id, transcripts[language], language)
        except (KeyError, NotFound):
            continue
    return None


SUBS = ["", "abc"]
YOUTUBE = ["3_yD_cEKoCk", "yt_1"]
HTML5 = [[], ["https://cdn.example.org/v/Lecture 1.mp4"]]
TRANSCRIPTS = [{}, {"en": "named-en.srt"}, {"fr": "Lecture 1 (fr).srt"}, {"fr": ""}, {"en": "", "de": "d/e.srt"}]
ASSETS = ["subs_abc.srt.sjson", "fr_subs_abc.srt.sjson", "named-en.srt", "Lecture_1__fr_.srt", "subs_yt_1.srt.sjson",
          "yt_1", "subs_3_yD_cEKoCk.srt.sjson", "Lecture_1", "subs_Lecture_1.srt.sjson", "d_e.srt",
          "de_subs_Lecture_1.srt.sjson", "subs_.srt.sjson", "subs_None.srt.sjson", "fr_subs_None.srt.sjson"]


def stores():
    """Yield a few contentstores: each asset alone, none, and all."""
    yield set()
    yield set(ASSETS)
    for name in ASSETS:
        yield {name}


@pytest.mark.parametrize("sub, youtube, html5, transcripts", list(itertools.product(SUBS, YOUTUBE, HTML5,
                                                                                    TRANSCRIPTS)))
def test_the_first_asset_found_is_the_lms_one_for_every_language_and_contentstore(sub, youtube, html5, transcripts):
    fields = {"sub": sub, "youtube_id_1_0": youtube, "html5_sources": html5, "transcripts": transcripts}
    for stored in stores():
        for language in ("en", "fr", "de", "es"):
            try:
                expected = oracle(fields, language, stored)
            except AttributeError:  # None.rsplit: the LMS answers 500, so nothing is served
                expected = "error"
            found = next(((n, f) for n, f in resolve.candidates(fields, language) if n in stored), None)
            if expected == "error":
                assert found is not None and found[1] is None, (fields, language, sorted(stored))
                continue
            assert found == expected, (fields, language, sorted(stored))


def test_english_is_offered_as_the_lms_lists_it_and_claimed_only_through_sub():
    assert resolve.languages({"sub": "abc"}) == [("en", True)]
    assert resolve.languages({}) == [("en", False)]
    assert resolve.languages({"transcripts": {"fr": "f.srt"}}) == [("fr", True)]
    assert resolve.languages({"transcripts": {"en": "e.srt", "fr": "f.srt"}}) == [("en", False), ("fr", True)]
    assert resolve.languages({"transcripts": {"fr": ""}}) == [("en", False)]


def test_names_are_cleaned_as_studio_stores_them():
    assert resolve.asset_name("Lecture 1 (fr).srt") == "Lecture_1__fr_.srt"
    assert resolve.asset_name("folder/Überblick – 1.srt") == "folder_Überblick___1.srt"
