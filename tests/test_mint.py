"""--mint-ids: videos without an edx_video_id get one as Studio gives it, opt-in, undoable, invisible to learners.

openedx-platform cannot be installed here, so the modulestore write goes
through the plugin's adapter (``etl.openedx.modulestore``), whose test side
(``tests/split.py``) writes split's documents as split does and raises on any
other call. The tool's own modulestore reader and the LMS port
(``etl.source.lms``, through real edx-val) then read what was written.
"""

import threading

import pytest

pytest.importorskip("edxval")
pytest.importorskip("storages")

import etl  # noqa: E402
from etl.demo.sample import cues, sjson, srt  # noqa: E402
from etl.model.layout import parse_course_id  # noqa: E402
from etl.openedx import mint  # noqa: E402
from etl.source import modulestore  # noqa: E402
from tests import split  # noqa: E402
from tests.edx import manage  # noqa: E402
from tests.test_phase2_site import answers, build, changed, ready, rows  # noqa: E402

COURSE = "course-v1:Mint+Ids+2026"


def course(db):
    """Three kinds of id-less videos: published with an SJSON sub and a translation, one whose pending draft changes
    nothing of its transcripts, and one whose draft changes ``sub``."""
    plain = {"sub": "plain", "transcripts": {"fr": "plain-fr.srt"}}
    renamed = {"sub": "renamed", "display_name": "A"}
    moving = {"sub": "before"}
    build(db, COURSE, {"subs_plain.srt.sjson": sjson(cues(3, "plain")), "plain-fr.srt": srt(cues(2, "fr")),
                       "subs_renamed.srt.sjson": sjson(cues(2, "renamed")),
                       "subs_before.srt.sjson": sjson(cues(2, "before")),
                       "subs_after.srt.sjson": sjson(cues(2, "after"))},
          {"plain": plain, "renamed": renamed, "moving": moving},
          {"plain": plain, "renamed": dict(renamed, display_name="B"), "moving": dict(moving, sub="after")})


def ids(db):
    """Return {(block id, branch): edx_video_id} as the tool's own reader finds them."""
    return {(v.usage_key.rsplit("@", 1)[1], v.branch): v.fields["edx_video_id"]
            for v in modulestore.videos(_cfg(db), parse_course_id(COURSE))}


def _cfg(db):
    return etl.Config(bucket="any-bucket", contentstore=db, manifest_dir=None)


@pytest.fixture(autouse=True)
def no_hook():
    split.before_write[0] = None
    yield
    split.before_write[0] = None


def test_minting_gives_each_id_less_block_one_id_in_both_branches_and_serves_it_byte_for_byte(val, contentstore,
                                                                                              monkeypatch):
    from edxval.models import Video

    course(contentstore)
    ready(val, COURSE)
    before, heads = answers(val), modulestore.heads(val, parse_course_id(COURSE))
    code, out, err = manage(val, monkeypatch, COURSE, "--mint-ids")  # the dry run: every block, both branches
    assert code == 0, err
    assert out.count("would mint") == 2 and "block@plain (published, draft)" in out and "en, fr" in out
    assert "block@renamed (published, draft)" in out and "block@moving" not in out.split("would register")[0]
    moving = [line for line in out.splitlines() if "block@moving" in line]
    assert len(moving) == 1 and "block@moving (published): draft_differs (" in moving[0]
    assert modulestore.heads(val, parse_course_id(COURSE)) == heads and Video.objects.count() == 0
    code, out, err = manage(val, monkeypatch, COURSE, "--mint-ids", "--commit")
    assert code == 0, err
    minted = ids(contentstore)
    assert minted[("plain", "published")] == minted[("plain", "draft")] != ""
    assert minted[("renamed", "published")] == minted[("renamed", "draft")] != ""
    assert minted[("moving", "published")] == minted[("moving", "draft")] == ""  # its draft changes sub: left
    assert Video.objects.get(edx_video_id=minted[("plain", "published")]).status == "external"
    assert sorted(rows()) == sorted([(minted[("plain", "published")], "en"), (minted[("plain", "published")], "fr"),
                                     (minted[("renamed", "published")], "en")])
    assert changed(before, answers(val)) == {}  # no LMS answer changed, in any block or branch
    done = [(w[1].rsplit("@", 1)[1], w[2]) for w in split.writes if w[0] == COURSE]
    assert done == [("plain", "draft"), ("plain", "publish"), ("renamed", "published"), ("renamed", "draft")]
    versions = {(v.usage_key.rsplit("@", 1)[1], v.branch): v.version
                for v in modulestore.videos(_cfg(contentstore), parse_course_id(COURSE))}
    assert versions[("plain", "draft")] == versions[("plain", "published")]  # Studio shows no unpublished change
    assert versions[("renamed", "draft")] != versions[("renamed", "published")]  # its pending change stays pending
    assert len(mint.receipts_of(val, parse_course_id(COURSE))) == 1

    code, out, err = manage(val, monkeypatch, COURSE, "--undo", "--commit")
    assert code == 0, err
    assert rows() == [] and set(ids(contentstore).values()) == {""}
    assert changed(before, answers(val)) == {}
    assert Video.objects.filter(edx_video_id=minted[("plain", "published")]).exists()  # edx-val cannot delete one


def test_undo_leaves_a_block_whose_id_an_author_changed_since_and_says_so(val, contentstore, monkeypatch):
    course(contentstore)
    ready(val, COURSE)
    assert manage(val, monkeypatch, COURSE, "--mint-ids", "--commit")[0] == 0
    minted = ids(contentstore)[("plain", "draft")]
    split.StandIn(val).set_video_id(COURSE, "block-v1:Mint+Ids+2026+type@video+block@plain", "draft",
                                    "authors-own-video", expected=minted)  # Studio: the author picked another video
    code, out, err = manage(val, monkeypatch, COURSE, "--undo", "--commit")
    assert code == 0, err
    assert "an author changed its id since it was minted" in out
    now = ids(contentstore)
    assert now[("plain", "draft")] == "authors-own-video" and now[("plain", "published")] == ""


def test_a_course_whose_structure_moved_since_the_hand_off_is_refused_before_any_write(val, contentstore,
                                                                                         monkeypatch):
    course(contentstore)
    ready(val, COURSE)
    split.StandIn(val).set_video_id(COURSE, "block-v1:Mint+Ids+2026+type@video+block@moving", "draft", "")
    code, _, err = manage(val, monkeypatch, COURSE, "--mint-ids", "--commit")
    assert code == 3 and "its structure changed since the hand-off" in err and "python -m etl handoff" in err
    assert set(ids(contentstore).values()) == {""} and rows() == []


def test_a_run_killed_while_it_mints_is_finished_by_the_next_and_a_late_write_of_it_changes_nothing(
        val, make_cfg, contentstore):
    from etl.openedx import register

    course(contentstore)
    ready(val, COURSE)
    before = answers(val)
    hold, frozen, writes = threading.Event(), threading.Event(), []

    def freeze_at_the_third_write(*args):
        writes.append(args)
        if len(writes) == 3:  # the second block written in one branch of two: the process stops, as if killed
            frozen.set()
            hold.wait(120)

    split.before_write[0] = freeze_at_the_third_write
    zombie = threading.Thread(target=lambda: _commit(register, val), daemon=True)
    zombie.start()
    assert frozen.wait(60)
    split.before_write[0] = None
    half = ids(contentstore)
    assert half[("renamed", "published")] and not half[("renamed", "draft")]  # half a block minted
    later = make_cfg(bucket=val.bucket)
    later.clock.advance(mint.receipts.LEASE_SECONDS + 1)  # its lease has run out, by S3's clock
    with pytest.raises(etl.Refused, match="a stopped run had minted ids; they were cleared first"):
        register.commit(later, register.plan(later, COURSE, mint_ids=True))
    assert set(ids(contentstore).values()) == {""}
    with pytest.raises(etl.Refused, match="structure changed since the hand-off"):
        register.commit(later, register.plan(later, COURSE, mint_ids=True))
    etl.handoff(val, COURSE)
    register.commit(later, register.plan(later, COURSE, mint_ids=True))
    hold.set()  # the first run wakes: its next write meets another id, and it stops
    zombie.join(60)
    minted = ids(contentstore)
    assert minted[("plain", "published")] == minted[("plain", "draft")] != ""
    assert changed(before, answers(val)) == {}


def _commit(register, cfg):
    try:
        register.commit(cfg, register.plan(cfg, COURSE, mint_ids=True))
    except Exception:  # the test asserts what it left
        pass



def test_a_failure_after_some_blocks_were_written_clears_them_before_the_command_exits(val, contentstore,
                                                                                       monkeypatch):
    course(contentstore)
    ready(val, COURSE)
    before = answers(val)
    calls = []

    def fail_at_the_third_write(*args):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("the modulestore went away")

    split.before_write[0] = fail_at_the_third_write
    code, _, err = manage(val, monkeypatch, COURSE, "--mint-ids", "--commit")
    assert code == 4 and "a modulestore write failed (RuntimeError: the modulestore went away)" in err
    assert "every id this run set was cleared" in err
    assert set(ids(contentstore).values()) == {""} and rows() == []
    [(_, receipt, _, _)] = mint.receipts_of(val, parse_course_id(COURSE))
    assert receipt["undone_at"] and "before its transcripts were registered" in receipt["undone_because"]
    assert changed(before, answers(val)) == {}
