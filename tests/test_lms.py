"""The LMS port answers as openedx-platform's transcript lookup does, and decides the format of a registered row.

Each expectation below is what ``xmodule/video_block/transcripts_utils.py``
answers for the same fields, edx-val rows and contentstore: the values were
worked out from its code line by line (``Transcript.convert`` with pysrt, the
``NON_EXISTENT_TRANSCRIPT`` stand-in, the ``not transcript_content.strip()``
check that only the contentstore path makes).
"""

import json

import pytest

from etl.demo.sample import cues, sjson, srt
from etl.source import lms
from etl.source.pairs import Overlay, Pair

pytestmark = pytest.mark.unit

SRT_BYTES = srt(cues(2, "Bonjour"))
FIELDS = {"edx_video_id": "v1", "transcripts": {"fr": "lecture-fr.srt"}, "youtube_id_1_0": "", "html5_sources": []}


def store(**assets):
    return lambda name: assets.get(name)


def with_row(fields, language, data, file_format, val=None):
    pair = Pair({"edx_video_id": fields["edx_video_id"], "language": language, "file_format": file_format}, ["c"],
                data)
    return Overlay(val or lms.NoVal(), [pair])


def test_an_srt_registered_as_srt_answers_every_request_byte_for_byte_and_as_sjson_it_would_not():
    assets = store(**{"lecture-fr.srt": SRT_BYTES})
    before = lms.snapshot(FIELDS, lms.NoVal(), assets, ["fr"])
    assert before[("download", "fr", "srt")] == ("ok", SRT_BYTES, lms.MIME_TYPES["srt"])
    as_is = lms.snapshot(FIELDS, with_row(FIELDS, "fr", SRT_BYTES, "srt"), assets, ["fr"])
    assert lms.differences(before, as_is) == []
    # Studio converts an upload to SJSON; the LMS then renders SRT back from it: numbered from 0, lines joined.
    studio = lms.convert(SRT_BYTES, "srt", "sjson").encode()
    converted = lms.snapshot(FIELDS, with_row(FIELDS, "fr", studio, "sjson"), assets, ["fr"])
    assert lms.differences(before, converted) == [("download", "fr", "srt"), ("download", None, "srt")]
    assert converted[("download", "fr", "srt")][1].startswith(b"0\n00:00:00,000 --> ")


def test_conversions_are_the_platforms():
    converted = json.loads(lms.convert(SRT_BYTES, "srt", "sjson"))
    assert converted == {"start": [0, 2500], "end": [2400, 4900],
                         "text": ["Bonjour, part 0.", "Bonjour, part 1."]}
    assert lms.convert(SRT_BYTES, "srt", "txt") == "Bonjour, part 0.\nBonjour, part 1."
    assert lms.convert(sjson([(0, 900, "a &amp; b")]), "sjson", "txt") == "a & b"
    assert lms.convert(b"not json", "sjson", "srt") == ("0\n00:00:00,001 --> 00:00:00,002\n"
                                                        "An error occured obtaining the transcript.\n\n")
    assert lms.convert(b'{"start": [1], "end": [], "text": []}', "sjson", "srt") == ""
    with pytest.raises(lms.GenerationError):
        lms.convert(b"1\nnot a time\nx\n", "srt", "sjson")


def test_an_sjson_with_no_cues_is_a_404_from_the_contentstore_and_an_empty_200_from_edx_val():
    empty = b'{"start": [], "end": [], "text": []}'
    fields = {"edx_video_id": "v1", "sub": "empty", "youtube_id_1_0": ""}
    assets = store(**{"subs_empty.srt.sjson": empty})
    before = lms.snapshot(fields, lms.NoVal(), assets, ["en"])
    after = lms.snapshot(fields, with_row(fields, "en", empty, "sjson"), assets, ["en"])
    assert before[("download", "en", "srt")] == ("404",)
    assert after[("download", "en", "srt")][:2] == ("ok", b"")
    assert ("download", "en", "srt") in lms.differences(before, after)


def test_an_edx_val_language_the_fields_never_name_is_listed_and_english_moves_the_default():
    fields = {"edx_video_id": "v1", "transcripts": {"fr": "f.srt"}, "youtube_id_1_0": ""}
    assets = store(**{"f.srt": SRT_BYTES})
    before = lms.snapshot(fields, lms.NoVal(), assets, ["de", "en"])
    german = lms.snapshot(fields, with_row(fields, "de", SRT_BYTES, "srt"), assets, ["de", "en"])
    assert before[("languages", False)] == ("ok", ["fr"]) and german[("languages", False)] == ("ok", ["de", "fr"])
    english = lms.snapshot(fields, with_row(fields, "en", SRT_BYTES, "srt"), assets, ["de", "en"])
    assert before[("default",)] == ("ok", "fr") and english[("default",)] == ("ok", "en")  # sub becomes NON_EXISTENT


def test_a_youtube_request_is_answered_from_its_own_id_first_and_rescaled_for_other_speeds():
    fields = {"edx_video_id": "", "sub": "main", "youtube_id_1_0": "yt1", "youtube_id_1_5": "yt15"}
    assets = store(**{"subs_main.srt.sjson": sjson([(1000, 2000, "main")]), "subs_yt1.srt.sjson": sjson(
        [(0, 10, "own")])})
    answers = lms.snapshot(fields, lms.NoVal(), assets)
    assert answers[("translation", "en", "yt1")] == ("ok", {"start": [0], "end": [10], "text": ["own"]})
    assert answers[("translation", "en", "yt15")] == ("ok", {"start": [1500], "end": [3000], "text": ["main"]})
    assert json.loads(answers[("translation", "en")][1])["text"] == ["main"]


def test_an_asset_that_is_not_utf_8_is_a_404_and_a_none_name_is_a_500():
    fields = {"edx_video_id": "", "transcripts": {"fr": "latin.srt"}, "youtube_id_1_0": ""}
    assert lms.snapshot(fields, lms.NoVal(), store(**{"latin.srt": "é".encode("latin-1")}), ["fr"])[
        ("download", "fr", "srt")] == ("404",)
    broken = {"edx_video_id": "", "transcripts": {"fr": None}, "youtube_id_1_0": ""}
    assert lms.snapshot(broken, lms.NoVal(), store(**{"fr_subs_None.srt.sjson": sjson(cues(1))}), ["fr"])[
        ("download", "fr", "srt")][0] == "500"
