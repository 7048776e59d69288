"""Phase II is invisible to learners everywhere on the site: every LMS answer of every course stays byte-identical.

A site of courses as Open edX holds them: an original and two reruns sharing
video ids (edx-val's ``copy_course_videos`` links them; the contentstore keeps a
copy of each asset per course, and one rerun's transcript was corrected, the
other gained a language), a course whose block has a pending draft with another
``sub``, a course that shares a video and is never migrated, and two courses
that agree. Every answer the LMS gives (``etl.source.lms``, a step-by-step port
of openedx-platform's lookup, reading through real edx-val's API and the
contentstore) is snapshotted for every course, block, branch, language and
format, then each course is registered alone, then families together: outside
the operator's flags, no answer changes, and each pair that would change one is
left with its reason. Publishing the draft then serves the draft's bytes.
"""

import os
import re

import pytest
from bson import ObjectId

pytest.importorskip("edxval")
pytest.importorskip("storages")

import etl  # noqa: E402
from etl.demo.sample import cues, register_course, save_upload, sjson, srt  # noqa: E402
from etl.model.layout import parse_course_id  # noqa: E402
from etl.protocol import receipts  # noqa: E402
from etl.source import lms  # noqa: E402
from etl.source.site import Site  # noqa: E402
from tests.edx import DATA, DEMO, DEMO_ID, import_static, load_videos, manage, val_objects  # noqa: E402

ORIGINAL, FIXED, MORE = "course-v1:Site+Shared+2026", "course-v1:Site+Shared+2027", "course-v1:Site+Shared+2028"
NEVER, DRAFT = "course-v1:Site+Never+2026", "course-v1:Site+Draft+2026"
AGREE, AGREE_RERUN = "course-v1:Site+Agree+2026", "course-v1:Site+Agree+2027"
LANGUAGES = ("en", "fr", "es", "de")
VERSION_A, VERSION_B = sjson(cues(3, "Version A of the shared video")), sjson(cues(3, "Version B, corrected in the rerun"))


def build(db, course_id, files, published, draft=None):
    """Store a split course as Studio does: its assets under cleaned names, a published and a draft structure."""
    register_course(db, course_id)
    for name, data in files.items():
        save_upload(db, course_id, name, data, "application/json" if name.endswith("sjson") else "application/x-subrip")
    index = db["modulestore.active_versions"].find_one(dict(zip(("org", "course", "run"),
                                                                course_id[len("course-v1:"):].split("+"))))
    draft = draft if draft is not None else published
    versions = {block_id: ObjectId() for block_id in draft}  # split's: a published block's source is its draft's
    pending = {block_id: ObjectId() for block_id in draft if draft[block_id] != published.get(block_id)}
    for branch, blocks in (("published", published), ("draft", draft)):
        db["modulestore.structures"].insert_one({"_id": index["versions"][f"{branch}-branch"], "blocks": [
            {"block_type": "video", "block_id": block_id, "fields": fields, "definition": None, "defaults": {},
             "edit_info": {"source_version": versions[block_id]} if branch == "published" else
             {"update_version": pending.get(block_id, versions[block_id])}} for block_id, fields in blocks.items()]})


def link(course_id, *video_ids):
    """Create the Videos and CourseVideo links edx-val holds for a course, as Studio's import and rerun make them."""
    from edxval.models import CourseVideo, Video

    for video_id in video_ids:
        video, _ = Video.objects.get_or_create(edx_video_id=video_id, defaults={
            "client_video_id": "External Video", "duration": 0, "status": "external"})
        CourseVideo.objects.get_or_create(video=video, course_id=course_id)


def shared_site(db):
    """Build the site's courses; return {course: [video ids]}."""
    french, spanish, german = srt(cues(2, "Bonjour")), srt(cues(2, "Hola")), srt(cues(2, "Hallo"))
    v1 = {"edx_video_id": "v1", "sub": "v1sub", "transcripts": {"fr": "v1-fr.srt"}}
    v2 = {"edx_video_id": "v2", "transcripts": {"es": "v2-es.srt"}}
    common = {"v1-fr.srt": french, "v2-es.srt": spanish}
    build(db, ORIGINAL, {"subs_v1sub.srt.sjson": VERSION_A, **common}, {"intro": v1, "lab": v2})
    build(db, FIXED, {"subs_v1sub.srt.sjson": VERSION_B, **common}, {"intro": v1, "lab": v2})
    build(db, MORE, {"subs_v1sub.srt.sjson": VERSION_A, "v2-de.srt": german, **common},
          {"intro": v1, "lab": dict(v2, transcripts={"es": "v2-es.srt", "de": "v2-de.srt"})})
    build(db, NEVER, {"subs_v1sub.srt.sjson": VERSION_A, **common}, {"intro": v1})
    v3, v4 = {"edx_video_id": "v3", "sub": "old"}, {"edx_video_id": "v4", "sub": "steady", "display_name": "A"}
    build(db, DRAFT, {"subs_old.srt.sjson": sjson(cues(2, "old text")), "subs_new.srt.sjson": sjson(cues(2, "new")),
                      "subs_steady.srt.sjson": sjson(cues(2, "steady"))},
          {"changed": v3, "renamed": v4}, {"changed": dict(v3, sub="new"), "renamed": dict(v4, display_name="B")})
    v5 = {"edx_video_id": "v5", "sub": "agree", "transcripts": {"es": "v5-es.srt"}}
    for course in (AGREE, AGREE_RERUN):
        build(db, course, {"subs_agree.srt.sjson": sjson(cues(2, "agreed")), "v5-es.srt": spanish}, {"clip": v5})
    videos = {ORIGINAL: ["v1", "v2"], FIXED: ["v1", "v2"], MORE: ["v1", "v2"], NEVER: ["v1"], DRAFT: ["v3", "v4"],
              AGREE: ["v5"], AGREE_RERUN: ["v5"]}
    for course, ids in videos.items():
        link(course, *ids)
    return videos


def answers(cfg):
    """Return every answer the LMS gives on the site: {(course, usage key, branch): lms.snapshot}."""
    from etl.openedx.val import View

    site = Site.read(cfg)
    return {(course, block.usage_key, block.branch): lms.snapshot(block.fields, View(), site.assets(course), LANGUAGES)
            for course in sorted(site.heads) for block in site.blocks(course)}


def changed(before, after):
    """Return {(course, usage key, branch): [requests]} whose answers differ."""
    found = {}
    for where in sorted(set(before) | set(after)):
        diff = lms.differences(before.get(where, {}), after.get(where, {}))
        if diff:
            found[where] = diff
    return found


def ready(cfg, course, **flags):
    assert etl.migrate(cfg, [course]).exit_code == 0
    etl.handoff(cfg, course, **flags)


def rows():
    from edxval.models import VideoTranscript

    return sorted((t.video.edx_video_id, t.language_code) for t in VideoTranscript.objects.all())


def test_registering_each_course_alone_then_families_changes_no_answer_anywhere(val, contentstore, monkeypatch):
    shared_site(contentstore)
    saved = import_static(contentstore, DEMO, DEMO_ID)
    register_course(contentstore, DEMO_ID)
    blocks = load_videos(contentstore, os.path.join(DATA, DEMO), DEMO_ID)
    link(DEMO_ID, *{f["edx_video_id"] for f in blocks.values() if f.get("edx_video_id")})
    before = answers(val)
    assert len(before) > 30

    ready(val, ORIGINAL)
    code, out, err = manage(val, monkeypatch, ORIGINAL, "--commit")
    assert code == 0, err
    # English of v1 was corrected in the rerun: edx-val would serve the rerun the original's text.
    assert f"skip {ORIGINAL} v1 en" in out and f"shared_differs ({FIXED} " in out
    assert f"registered {ORIGINAL} v1 fr" in out and f"also serves {NEVER}, {FIXED}, {MORE}" in out
    assert rows() == [("v1", "fr"), ("v2", "es")]
    assert changed(before, answers(val)) == {}

    ready(val, MORE)
    code, out, err = manage(val, monkeypatch, MORE, "--commit")
    assert code == 0, err
    # German is the third course's own: the other two would gain a language their learners never had.
    assert f"skip {MORE} v2 de" in out and "shared_adds_language" in out and f"{ORIGINAL} (" in out
    assert out.count("val_row_same") == 2 and rows() == [("v1", "fr"), ("v2", "es")]
    assert changed(before, answers(val)) == {}

    ready(val, DRAFT)
    code, out, err = manage(val, monkeypatch, DRAFT, "--commit")
    assert code == 0, err
    assert f"skip {DRAFT} v3 en" in out and "draft_differs" in out
    assert ("v4", "en") in rows() and ("v3", "en") not in rows()  # a draft that renames a block changes nothing
    assert changed(before, answers(val)) == {}

    # The family of the original: the never-migrated course is in it, so together is refused until it is committed;
    # then the corrected rerun disagrees, so together is refused again; nothing is written either time.
    code, _, err = manage(val, monkeypatch, ORIGINAL, "--with-shared", "--commit")
    assert code == 3 and f"course {NEVER}, which shares videos with {ORIGINAL}, is not committed" in err
    ready(val, NEVER)
    ready(val, FIXED)
    code, _, err = manage(val, monkeypatch, ORIGINAL, "--with-shared", "--commit")
    assert code == 3 and "share video v1 and disagree on en" in err and "nothing was registered" in err
    assert rows() == [("v1", "fr"), ("v2", "es"), ("v4", "en")]

    # Two courses that agree, registered together: one row each pair, a receipt each, and undone only together.
    ready(val, AGREE)
    ready(val, AGREE_RERUN)
    copies = set(val_objects(val))
    code, out, err = manage(val, monkeypatch, AGREE, "--with-shared", "--commit")
    assert code == 0, err
    assert f"{AGREE} (with {AGREE_RERUN}): 2 registered" in out and f"serves {AGREE}, {AGREE_RERUN}" in out
    assert all(receipts.live(val, parse_course_id(c)) for c in (AGREE, AGREE_RERUN))
    assert changed(before, answers(val)) == {}
    code, out, err = manage(val, monkeypatch, AGREE, "--undo", "--commit")
    assert code == 0, err
    assert out.count(f"also registered for {AGREE_RERUN}; undo them together with --with-shared") == 2
    assert ("v5", "es") in rows()
    code, out, err = manage(val, monkeypatch, AGREE, "--undo", "--with-shared", "--commit")
    assert code == 0, err
    assert ("v5", "es") not in rows() and set(val_objects(val)) == copies
    assert not receipts.live(val, parse_course_id(AGREE)) and not receipts.live(val, parse_course_id(AGREE_RERUN))

    # The operator's flag: English the LMS never reads is registered for the demo course, and changes only it.
    ready(val, DEMO_ID, english_from_transcripts=True)
    code, out, err = manage(val, monkeypatch, DEMO_ID, "--commit")
    assert code == 0, err
    assert out.count(", as english_from_transcripts") == 5
    moved = changed(before, answers(val))
    assert moved and {course for course, _, _ in moved} == {DEMO_ID}
    assert all("en" in request or request[0] in ("languages", "default") or request[1] is None
               for requests in moved.values() for request in requests), moved
    assert saved


def test_after_the_author_publishes_the_draft_the_lms_serves_the_drafts_bytes(val, contentstore, monkeypatch):
    shared_site(contentstore)
    ready(val, DRAFT)
    assert manage(val, monkeypatch, DRAFT, "--commit")[0] == 0
    index = contentstore["modulestore.active_versions"].find_one({"org": "Site", "course": "Draft"})
    contentstore["modulestore.active_versions"].update_one(  # Studio's publish: the draft becomes published
        {"_id": index["_id"]}, {"$set": {"versions.published-branch": index["versions"]["draft-branch"]}})
    published = {usage: answer for (course, usage, branch), answer in answers(val).items()
                 if course == DRAFT and branch == "published"}
    changed_block = next(usage for usage in published if usage.endswith("@changed"))
    body = published[changed_block][("download", "en", "srt")]
    assert body[0] == "ok" and b"new, part 1." in body[1] and b"old text" not in body[1]


def test_a_structure_that_moves_between_plan_and_commit_registers_nothing(val, contentstore):
    from etl.openedx import register

    shared_site(contentstore)
    ready(val, AGREE)
    result = register.plan(val, AGREE)
    assert len(result.act) == 2
    index = contentstore["modulestore.active_versions"].find_one({"org": "Site", "course": "Agree", "run": "2027"})
    new = contentstore["modulestore.structures"].find_one({"_id": index["versions"]["draft-branch"]})
    new["_id"] = type(index["_id"])()
    contentstore["modulestore.structures"].insert_one(new)
    contentstore["modulestore.active_versions"].update_one(  # an author edits the rerun meanwhile
        {"_id": index["_id"]}, {"$set": {"versions.draft-branch": new["_id"]}})
    with pytest.raises(etl.Refused, match=re.escape(f"course {AGREE_RERUN}: its structure changed since the plan")):
        register.commit(val, result)
    assert rows() == [] and val_objects(val) == {}
    assert not receipts.live(val, parse_course_id(AGREE))


def test_the_hand_off_already_says_which_pairs_sharing_or_drafts_hold_back(val, contentstore, capsys, tmp_path):
    from etl.protocol import phase2
    from tests.helpers import run_cli

    shared_site(contentstore)
    etl.migrate(val, [ORIGINAL, MORE, DRAFT])
    df = etl.handoff(val, ORIGINAL).set_index(["edx_video_id", "language", "branch"])
    assert df.loc[("v1", "en", "published"), "status"] == "shared_differs"
    assert FIXED in df.loc[("v1", "en", "published"), "detail"]
    assert df.loc[("v1", "fr", "published"), "status"] == "ok"
    more = etl.handoff(val, MORE).set_index(["edx_video_id", "language", "branch"])
    assert more.loc[("v2", "de", "published"), "status"] == "shared_adds_language"
    assert etl.handoff(val, DRAFT).set_index(["edx_video_id", "branch"]).loc[("v3", "draft"), "status"] \
        == "draft_differs"
    summary = phase2.read(val, parse_course_id(MORE))["handoff"]
    assert summary["shared"] == {FIXED: 1, ORIGINAL: 1}  # v1 en, corrected in the rerun; v2 de, the original lacks it
    code, out, err = run_cli(val, contentstore, capsys, tmp_path, "report")
    assert code == 0, err
    assert "handed off: 2 to register; held back: 1 shared_adds_language, 1 shared_differs" in out
    assert f"shared videos hold back pairs of 2 course(s): {ORIGINAL} with {FIXED} (1 pair); {MORE} with {ORIGINAL} " \
           f"(1 pair), {FIXED} (1 pair)" in out and "transcript_etl_register COURSE --with-shared --commit" in out
