"""The pairwise sweep of actors: freeze A after each of its requests, let B run to completion, wake A, check.

Every actor that writes or deletes (``ACTORS``) meets every other, in both
orders. For each ordered pair (A, B) and each request A makes: the course is
brought to where A starts, A runs on its own clients until that request has
been answered and then freezes (``tests/freeze.py``: its heartbeat too, as a
suspended VM's would); B's lease clock is moved on past A's lease, so nothing
sleeps, and B runs to completion; then A wakes, its own clock unchanged. The
invariants, after every point:

- no committed marker names a missing object, and a committed course verifies
  byte for byte; a course that is not committed has nothing live;
- no committed object is deleted or changed: the commit B left (or found) is
  whole after A wakes, unless A is a forced rollback, whose job that is;
- every Phase II copy in edx-val's storage is held by a row, or named by a
  receipt that is not undone;
- the course converges: one more ``migrate`` promotes it, verified, with no
  staging left, and one more undo leaves only the copies rows hold.

``tests/test_sweep_pairs.py`` runs a deterministic sample (every pair, a few
points each); ``scripts/sweep.py --all`` runs every point.
"""

import json
import os
import uuid

import etl
from etl.model.layout import Layout, parse_course_id
from etl.store import probe
from tests.freeze import Freezer, Runner, nth_answer
from tests.helpers import assert_finished_by_rerun, assert_invariant, objects

ACTORS = ("extract", "promote", "migrate", "rollback", "rollback --force", "vacuum", "register", "undo")
PHASE2 = {"register", "undo"}
COURSE = "course-v1:Pair+Sweep+2026"


def build(db):
    """A small course with a video edx-val knows: English through ``sub`` (SJSON) and French by name (SRT)."""
    from etl.demo.sample import cues, register_course, save_asset, sjson, srt
    from tests.batch import WHEN

    register_course(db, COURSE)
    save_asset(db, COURSE, "subs_one.srt.sjson", sjson(cues(4, "one")), upload_date=WHEN)
    save_asset(db, COURSE, "two-fr.srt", srt(cues(3, "deux")), upload_date=WHEN)
    index = db["modulestore.active_versions"].find_one({"org": "Pair", "course": "Sweep"})
    fields = {"edx_video_id": "pair-sweep-video", "sub": "one", "transcripts": {"fr": "two-fr.srt"}}
    for branch in ("published", "draft"):
        db["modulestore.structures"].insert_one({"_id": index["versions"][f"{branch}-branch"], "blocks": [
            {"block_type": "video", "block_id": "clip", "fields": fields}]})


class Sweep:
    """One sweep's site: Configs under a prefix root of their own per point, and edx-val when Phase II is in it."""

    def __init__(self, make_cfg, db, phase2=False):
        self.make_cfg, self.db, self.phase2 = make_cfg, db, phase2
        build(db)

    def cfg(self, root, expired=False):
        cfg = self.make_cfg(staging_prefix=f"{root}/staging", live_prefix=f"{root}/live",
                            state_prefix=f"{root}/state", manifest_dir=None, s3_concurrency=4)
        if expired:
            cfg.clock.advance(cfg.lease_seconds + 1)
        return cfg

    def reset(self):
        """Empty edx-val: its rows, Videos and copies, for a point of its own; then give it the course's Video."""
        if not self.phase2:
            return
        from edxval.models import CourseVideo, Video, VideoTranscript

        from tests.edx import VAL_BUCKET, keys

        VideoTranscript.objects.all().delete()
        CourseVideo.objects.all().delete()
        Video.objects.all().delete()
        cfg = self.make_cfg()
        for key in keys(cfg, VAL_BUCKET):
            cfg.s3.delete_object(Bucket=VAL_BUCKET, Key=key)
        Video.objects.create(edx_video_id="pair-sweep-video", client_video_id="External Video", duration=0,
                             status="external")

    def prepare(self, cfg, actor):
        """Bring the course to where ``actor`` starts."""
        if actor in ("promote", "rollback"):
            etl.extract(cfg, COURSE)
        elif actor in ("rollback --force", "vacuum", "register", "undo"):
            etl.migrate(cfg, [COURSE], workers=1, retries=0)
        if actor in PHASE2:
            etl.handoff(cfg, COURSE)
        if actor == "undo":
            act(cfg, "register")


def act(cfg, actor):
    """Run one actor on the course; return what it says (its outcome row, or "ok")."""
    from etl.batch.unit import migrate_course

    if actor == "migrate":
        return migrate_course(cfg, COURSE, retries=0)["outcome"]
    if actor.startswith("rollback"):
        etl.rollback(cfg, COURSE, force=actor.endswith("--force"))
    elif actor == "vacuum":
        etl.vacuum(cfg, COURSE, retain_days=0)
    elif actor in PHASE2:
        from etl.openedx import register, undo

        if actor == "register":
            register.commit(cfg, register.plan(cfg, COURSE))
        else:
            undo.commit_undo(cfg, undo.plan_undo(cfg, COURSE))
    else:
        getattr(etl, actor)(cfg, COURSE)
    return "ok"


def requests(sweep, a):
    """Return how many S3 requests A makes on an undisturbed run, from where it starts."""
    sweep.reset()
    root = f"count-{uuid.uuid4().hex[:10]}"
    sweep.prepare(sweep.cfg(root), a)
    cfg = sweep.cfg(root)
    probe.probe(cfg)  # once per process and bucket: no point of the sweep sees its requests
    counted = []
    cfg.s3.meta.events.register("after-call.s3.*", lambda **_: counted.append(1))
    act(cfg, a)
    return len(counted)


def point(sweep, a, b, n):
    """Run one interleaving: A frozen after its ``n``-th request while B runs; check the invariants."""
    sweep.reset()
    root = f"pair-{uuid.uuid4().hex[:10]}"
    sweep.prepare(sweep.cfg(root), a)
    cfg_a = sweep.cfg(root)
    probe.probe(cfg_a)
    freezer = Freezer(cfg_a, after=nth_answer(n), any_answer=True)
    runner = Runner(lambda: act(cfg_a, a))
    runner.start()
    while runner.is_alive() and not freezer.reached.is_set():
        runner.join(0.02)
    cfg_b = sweep.cfg(root, expired=True)  # A's lease has run out, by S3's clock as B reads it
    try:
        b_said = act(cfg_b, b)
    except etl.EtlError as err:
        b_said = type(err).__name__
    kept = the_commit(cfg_b)
    freezer.release()
    a_said = runner.outcome()
    assert runner.error is None or isinstance(runner.error, etl.EtlError), (a, b, n, repr(runner.error))
    check(sweep, cfg_b, a, kept, (a, b, n, a_said, b_said))
    return a_said, b_said


def the_commit(cfg):
    """Return the commit and every object of its epoch, byte for byte, or None."""
    doc = etl.committed(cfg, COURSE)
    if doc is None:
        return None
    layout = Layout(cfg, parse_course_id(COURSE))
    kept = {k: v for k, v in objects(cfg, layout.live_root).items()
            if k.startswith(doc["transcripts_prefix"]) or k == doc["manifest_key"]}
    return {k: doc[k] for k in ("run_id", "epoch", "manifest_sha256", "transcripts")}, kept


def check(sweep, cfg, a, kept, where):
    """The invariants of one point, then the operator's re-run: each failure names the point."""
    assert_invariant(cfg, sweep.db, COURSE)
    if kept is not None and a != "rollback --force":
        assert the_commit(cfg) == kept, where
    if sweep.phase2:
        copies_named(cfg, where)
    assert_finished_by_rerun(cfg, sweep.db, COURSE)
    if sweep.phase2:
        act(cfg, "undo")
        from tests.edx import val_objects

        assert set(val_objects(cfg)) == held(), where


def held():
    from edxval.models import VideoTranscript

    return {t.transcript.name for t in VideoTranscript.objects.all()}


def copies_named(cfg, where):
    """Every copy in edx-val's storage is held by a row, or named by a receipt that is not undone."""
    from etl.protocol import receipts
    from tests.edx import val_objects

    named = {r.get("storage_name") for _, doc, _, _ in receipts.all_of(cfg, parse_course_id(COURSE))
             if not doc.get("undone_at") for r in doc.get("registered") or []}
    orphans = set(val_objects(cfg)) - held() - named
    assert not orphans, (where, sorted(orphans))


def sample(total):
    """Return a pair's freeze points: every one with ETL_SWEEP_POINTS=all, else the first, the last and between.

    ``ETL_SWEEP_POINTS=N`` takes N points, evenly spread; the default is 2.
    """
    wanted = os.environ.get("ETL_SWEEP_POINTS", "2")
    points = total if wanted == "all" else int(wanted)
    if total <= points:
        return list(range(1, total + 1))
    return sorted({1 + round(i * (total - 1) / (points - 1)) for i in range(points)})


def run_pair(site, a, b):
    """Sweep one ordered pair at its sampled points; note them where ETL_SWEEP_REPORT names a file."""
    total = requests(site, a)
    assert total > 2
    points = sample(total)
    outcomes = [point(site, a, b, n) for n in points]
    report = os.environ.get("ETL_SWEEP_REPORT")
    if report:
        with open(report, "a") as fh:
            fh.write(json.dumps({"a": a, "b": b, "requests": total, "points": len(points),
                                 "outcomes": sorted({f"{x} / {y}" for x, y in outcomes})}) + "\n")
    return outcomes
