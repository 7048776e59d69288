"""Decide which (video, language) pairs may be handed to edx-val: only those no learner anywhere would notice.

edx-val keys a transcript by (video, language), and the LMS asks edx-val first
for every block that names the video, in every course. So a pair is registered
only when, for every block on the site that names its video (in every course,
published and draft), every answer of the LMS (``etl.source.lms.snapshot``: the
language lists, the default language, each language in SJSON, SRT and text) is
the same with the pair in edx-val as without it. The one exception is a pair
taken through a flag the operator gave (``difference``), and only in the
published blocks of the courses being registered (the *family*).

``choose`` keeps one row per pair and sets aside what edx-val's one row cannot
hold: a pair only drafts serve, blocks that disagree, languages that differ only
by case, a draft that names another asset. ``judge`` then runs the LMS against
the whole site, before and after, for each pair alone and then for every pair of
a video together, and sets aside each pair that would change an answer, naming
the course and the block.
"""

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from etl.source import lms

DRAFT_ONLY, DRAFT_DIFFERS = "draft_only", "draft_differs"
SHARED_DIFFERS, SHARED_ADDS_LANGUAGE = "shared_differs", "shared_adds_language"
BLOCKS_DISAGREE, CASE_TWINS, SAME_ROW, LMS_DIFFERS = ("blocks_disagree", "languages_differ_by_case", "same_row_as",
                                                      "lms_differs")
STATUSES = (DRAFT_ONLY, DRAFT_DIFFERS, SHARED_DIFFERS, SHARED_ADDS_LANGUAGE, BLOCKS_DISAGREE, CASE_TWINS, SAME_ROW,
            LMS_DIFFERS)
WHY = {
    DRAFT_ONLY: "only an unpublished draft serves it: the LMS would show it at once",
    DRAFT_DIFFERS: "the author's pending draft serves other bytes or another asset; publish or discard it first",
    SHARED_DIFFERS: "another course shares the video and is served other bytes; edx-val would serve it these",
    SHARED_ADDS_LANGUAGE: "another course shares the video without this language; its learners would gain it",
    BLOCKS_DISAGREE: "blocks of this course name the video and serve it different bytes",
    CASE_TWINS: "languages that differ only by case, with different bytes: edx-val on MySQL keeps one row",
    SAME_ROW: "the same bytes under another case of the language: edx-val on MySQL keeps one row",
    LMS_DIFFERS: "the LMS would answer differently from edx-val than from the contentstore",
}


@dataclass
class Pair:
    """One (video, language) to register: the row chosen for it, its bytes, and who else it serves."""

    row: dict  # the hand-off row: course_id, usage_key, edx_video_id, language, file_format, md5, difference, ...
    courses: list  # the family's courses whose hand-offs name the pair
    data: bytes = None
    shared: list = field(default_factory=list)  # other courses whose blocks name the video, served the same bytes

    @property
    def video_id(self):
        return self.row["edx_video_id"]

    @property
    def language(self):
        return self.row["language"]


@dataclass
class Skip:
    """A row left on the contentstore: its status (one of ``STATUSES``, or a hand-off status) and what it names."""

    row: dict
    status: str
    detail: str = ""
    other: str = ""  # the other course a shared_* status is about

    def __str__(self):
        return f"{self.status} ({self.detail})" if self.detail else self.status


def choose(rows, order=()):
    """Keep one row per (video, language) as edx-val keys them; return (pairs, skips).

    ``rows`` are hand-off rows the LMS resolves (status ok) of the family's
    courses, both branches; ``order`` lists the family's courses, the named first:
    a pair several of them serve alike is chosen from the first.
    """
    rank = {course: i for i, course in enumerate(order)}
    groups = defaultdict(list)
    for row in rows:
        groups[(row["edx_video_id"], row["language"].casefold())].append(row)
    pairs, skips = [], []
    for _, group in sorted(groups.items()):
        published = [r for r in group if r["branch"] == "published"]
        if not published:
            skips.append(Skip(group[0], DRAFT_ONLY))
            continue
        languages = sorted({r["language"] for r in published})
        served = {(r["md5"], r["file_format"]) for r in published}
        if len(served) > 1:
            courses = sorted({r["course_id"] for r in published})
            if len(languages) > 1:
                status, detail = CASE_TWINS, ", ".join(languages) + ", with different bytes"
            elif len(courses) > 1:
                status, detail = SHARED_DIFFERS, "; ".join(
                    f"{c} serves {', '.join(sorted({r['md5'] for r in published if r['course_id'] == c}))}"
                    for c in courses)
            else:
                status, detail = BLOCKS_DISAGREE, ", ".join(sorted({r["usage_key"] for r in published}))
            skips.extend(Skip(r, status, detail) for r in published)
            continue
        drafts = {(r["usage_key"], r["language"]): r for r in group if r["branch"] == "draft"}
        moved = [(r, drafts[(r["usage_key"], r["language"])]) for r in published
                 if (r["usage_key"], r["language"]) in drafts
                 and drafts[(r["usage_key"], r["language"])]["asset_name"] != r["asset_name"]]
        if moved:
            skips.extend(Skip(r, DRAFT_DIFFERS, f"{r['usage_key']}: the draft serves {d['asset_name']}, the "
                              f"published block {r['asset_name']}") for r, d in moved)
            continue
        chosen = min(published, key=lambda r: (rank.get(r["course_id"], len(rank)), r["course_id"], r["language"],
                                               r["usage_key"]))
        for language in languages:
            if language != chosen["language"]:
                skips.append(Skip(next(r for r in published if r["language"] == language), SAME_ROW,
                                  chosen["language"]))
        pairs.append(Pair(dict(chosen), sorted({r["course_id"] for r in group}, key=lambda c: (rank.get(c, 0), c))))
    return pairs, skips


class Overlay:
    """edx-val as it would be with ``pairs`` added: rows matched by language in any case, as MySQL matches them."""

    def __init__(self, val, pairs):
        self.val = val
        self.rows = {(p.video_id, p.language.casefold()): p for p in pairs}

    def languages(self, video_id):
        found = list(self.val.languages(video_id))
        have = {language.casefold() for language in found}
        return found + [p.language for (v, lang), p in self.rows.items() if v == video_id and lang not in have]

    def data(self, video_id, language):
        pair = self.rows.get((video_id, language.casefold()))
        if pair is None:
            return self.val.data(video_id, language)
        return {"file_name": f"{video_id}-{pair.language}.{pair.row['file_format']}", "content": pair.data}


class Cached:
    """A val view read once per (video, language): a plan asks the same questions many times."""

    def __init__(self, val):
        self.val, self._languages, self._data = val, {}, {}

    def languages(self, video_id):
        if video_id not in self._languages:
            self._languages[video_id] = list(self.val.languages(video_id))
        return self._languages[video_id]

    def data(self, video_id, language):
        key = (video_id, language)
        if key not in self._data:
            try:
                self._data[key] = ("ok", self.val.data(video_id, language))
            except Exception as exc:  # kept, and raised again for every request, as the LMS would meet it
                self._data[key] = ("raise", exc)
        kind, value = self._data[key]
        if kind == "raise":
            raise value
        return value

    def courses(self, video_id):
        return list(getattr(self.val, "courses", lambda _: [])(video_id))


def judge(pairs, site, val, family):
    """Run the LMS against every block that names each pair's video; return (pairs kept, skips).

    ``site`` is the ``etl.source.site.Site``, ``val`` edx-val's view as it is now
    (``lms.NoVal`` when it is not at hand), ``family`` the courses being registered.
    """
    val = val if isinstance(val, Cached) else Cached(val)
    by_video = defaultdict(list)
    for pair in pairs:
        by_video[pair.video_id].append(pair)
    kept, skips = [], []
    for video_id, group in sorted(by_video.items()):
        courses = sorted(set(site.courses(video_id)) | {c for p in group for c in p.courses}
                         | (set(val.courses(video_id)) & set(site.heads)))
        blocks = [(course, block) for course in courses for block in site.blocks(course, video_id)]
        published = {(c, b.usage_key): b.fields for c, b in blocks if b.branch == "published"}
        settled = {i for i, (c, b) in enumerate(blocks)  # published, or a draft with no pending change to its video
                   if b.branch == "published" or published.get((c, b.usage_key)) == b.fields}
        languages = sorted({p.language for p in group})
        before = {i: lms.snapshot(b.fields, val, site.assets(c), languages) for i, (c, b) in enumerate(blocks)}

        def after(i, added):
            course, block = blocks[i]
            if not added:
                return before[i]
            return lms.snapshot(block.fields, Overlay(val, added), site.assets(course), languages)

        alive = []
        for pair in group:  # each pair alone: the block and the answer it would change
            blame = next(((i, diff) for i in range(len(blocks)) if not _allowed(pair, blocks[i][0], i in settled, family)
                          for diff in [lms.differences(before[i], after(i, [pair]))] if diff), None)
            if blame is None:
                alive.append(pair)
            else:
                skips.append(_skip(pair, blocks[blame[0]], blame[1], before[blame[0]], family))
        while alive:  # then together: a language list or a default language may move only for the whole set
            blame = None
            for i in range(len(blocks)):
                allowed = [p for p in alive if _allowed(p, blocks[i][0], i in settled, family)]
                diff = lms.differences(after(i, allowed), after(i, alive))
                if diff:
                    blame = (i, diff, [p for p in alive if p not in allowed])
                    break
            if blame is None:
                break
            i, diff, suspects = blame
            named = [p for p in suspects if any(p.language in key for key in diff)] or suspects
            for pair in named:
                alive.remove(pair)
                skips.append(_skip(pair, blocks[i], diff, before[i], family))
        for pair in alive:
            pair.shared = [c for c in courses if c not in family and site.blocks(c, video_id)]
            kept.append(pair)
    return kept, skips


def _allowed(pair, course, settled, family):
    """Tell whether a change in a block is the operator's own: a flagged pair, in a course being registered.

    ``settled``: the block is published, or a draft with no pending change to
    its video's fields, which publishing would leave serving the same.
    """
    return bool(pair.row.get("difference")) and course in family and course in pair.courses and settled


def request(key):
    """Say which learner request a snapshot key is, for an operator."""
    kind, *rest = key
    if kind == "translation":
        return f"the player's {rest[0]} transcript" + (f" (YouTube, videoId {rest[1]})" if len(rest) > 1 else "")
    if kind == "download":
        return f"the {rest[1].upper()} download" + (f" of {rest[0]}" if rest[0] else " in the default language")
    if kind == "languages":
        return "the language list" + ("" if rest[0] else " the video shows")
    return "the default language"


def _skip(pair, where, diff, before, family):
    course, block = where
    request_ = request(diff[0])
    if course not in family:
        listed = before.get(("languages", False), ("ok", []))[1]
        if pair.language.casefold() not in {lang.casefold() for lang in listed}:
            return Skip(pair.row, SHARED_ADDS_LANGUAGE, f"{course} ({block.usage_key}, {block.branch}) does not "
                        f"offer {pair.language}", course)
        served = before.get(("download", pair.language, lms.SRT), ("404",))
        said = _md5(served[1]) if served[0] == "ok" else f"nothing ({served[0]})"
        return Skip(pair.row, SHARED_DIFFERS, f"{course} ({block.usage_key}, {block.branch}) is served {said}; "
                    f"this course {pair.row['md5']}", course)
    if block.branch == "draft":
        return Skip(pair.row, DRAFT_DIFFERS, f"{block.usage_key}: once published, its pending draft would be "
                    f"answered differently: {request_}")
    return Skip(pair.row, LMS_DIFFERS, f"{block.usage_key}: edx-val would answer differently: {request_}")


def _md5(data):
    return hashlib.md5(data).hexdigest()
