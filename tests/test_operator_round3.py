"""What the operator reads is true, round 3: each case runs the real CLI in its own process.

Exit code, the first line of the message, and what S3 holds afterwards.
"""

import json

import etl
from etl.model.layout import Layout, parse_course_id
from etl.protocol import state
from tests.batch import batch_ids
from tests.helpers import listing
from tests.s3proxy import FaultProxy
from tests.test_operator_view import N, cli

UNREACHABLE = {"ETL_MONGO_URI": "mongodb://etl:s3cr3t-pw@127.0.0.1:9/?serverSelectionTimeoutMS=120000"}


def test_an_unwritable_manifest_dir_or_output_is_refused_before_any_request(cfg):
    course = batch_ids(N)[1]
    for argv, flag in ((["extract", course, "--manifest-dir", "/proc/nope"], "--manifest-dir '/proc/nope'"),
                       (["migrate", course, "--manifest-dir", "/proc/nope"], "--manifest-dir '/proc/nope'"),
                       (["diff", course, "--format", "csv", "--output", "/proc/nope/d.csv"], "--output '/proc/nope/d.csv'")):
        code, out, err = cli(cfg, *argv, target=False, env={"ETL_BUCKET": cfg.bucket,
                                                              "ETL_S3_ENDPOINT_URL": cfg.s3_endpoint_url})
        last = err.strip().splitlines()[-1]
        assert code == 2 and f"{flag} cannot be written" in last and "nothing was done" in last, (argv, err)
    assert listing(cfg) == {}  # not a record, not a fence, not a probe object


def test_commands_that_need_no_database_never_connect_to_it(cfg, tmp_path):
    course = batch_ids(N)[1]
    code, _, err = cli(cfg, "migrate", course)
    assert code == 0, err
    doc = etl.committed(cfg, course)
    local = tmp_path / "a.parquet"
    local.write_bytes(cfg.s3.get_object(Bucket=cfg.bucket, Key=doc["manifest_key"])["Body"].read())
    # The URI names a port nothing listens on, with a two-minute server selection: any connection would fail.
    for argv in (["diff", str(local), f"s3://{cfg.bucket}/{doc['manifest_key']}"], ["status"], ["status", course],
                 ["history", course]):
        code, out, err = cli(cfg, *argv, env=UNREACHABLE)
        assert code == 0 and "MongoDB" not in err and "contentstore" not in err, (argv, err)
    code, out, err = cli(cfg, "status", batch_ids(N)[2].replace("Course2", "Cuorse2"), env=UNREACHABLE)
    assert code == 2 and "unknown course" in err and "s3cr3t-pw" not in err


def test_rollback_dry_run_lists_exactly_what_rollback_deletes_with_or_without_force(cfg):
    course = batch_ids(N)[1]
    assert cli(cfg, "migrate", course)[0] == 0
    layout = Layout(cfg, parse_course_id(course))
    code, out, err = cli(cfg, "rollback", course, "--dry-run", "--force", "--format", "json")
    plan = json.loads(out)
    assert code == 0 and plan["was_promoted"] and layout.marker not in plan["would_delete"], err
    code, out, err = cli(cfg, "rollback", course, "--force", "--format", "json")
    done = json.loads(out)
    assert code == 0 and done["deleted"] == len(plan["would_delete"]), (plan, done)
    assert set(listing(cfg, layout.live_root)) == {layout.marker}  # the release: nothing else


def test_the_plan_exits_with_the_code_the_run_would(cfg):
    course = batch_ids(N)[1]
    layout = Layout(cfg, parse_course_id(course))
    cfg.s3.put_object(Bucket=cfg.bucket, Key=layout.live_transcripts(1) + "hand-made.srt", Body=b"someone's")
    code, out, err = cli(cfg, "migrate", course, "--dry-run")
    assert code == 3 and "conflict" in out and "the plan predicts exit 3" in err, (out, err)
    code, out, err = cli(cfg, "migrate", course)
    assert code == 3, err


def test_status_filters_by_state(cfg):
    ids = batch_ids(N)[1:3]
    assert cli(cfg, "migrate", ids[0])[0] == 0
    record = {"course_id": ids[1], "state": "failed", "run_id": "20260101T000000Z-0000dead", "epoch": 1,
              "error": "course x: what happened"}
    cfg.s3.put_object(Bucket=cfg.bucket, Key=Layout(cfg, parse_course_id(ids[1])).record,
                      Body=json.dumps(record).encode())
    code, out, err = cli(cfg, "status", "--state", "failed", "--format", "json")
    assert code == 0 and [r["course_id"] for r in json.loads(out)] == [ids[1]], err
    code, out, err = cli(cfg, "status", "--state", "flailed")
    assert code == 2 and "--state 'flailed' is not a state" in err


def test_bad_credentials_are_told_from_a_missing_permission(cfg, s3_endpoint):
    for code_name, said in (("InvalidAccessKeyId", "the AWS credentials were refused"),
                            ("SignatureDoesNotMatch", "the AWS credentials were refused"),
                            ("AccessDenied", "the credentials are valid but lack a permission")):
        with FaultProxy(s3_endpoint) as proxy:
            proxy.fail(None, status=403, code=code_name)
            code, out, err = cli(cfg, "status", target=False, env={"ETL_BUCKET": cfg.bucket,
                                                                 "ETL_S3_ENDPOINT_URL": proxy.url})
        last = err.strip().splitlines()[-1]
        assert code == 2 and said in last and code_name in last, (code_name, err)


def test_vacuum_names_a_stopped_run_s_epoch_and_the_command_that_removes_it(cfg):
    course = batch_ids(N)[1]
    assert cli(cfg, "extract", course)[0] == 0
    layout = Layout(cfg, parse_course_id(course))
    record = json.loads(cfg.s3.get_object(Bucket=cfg.bucket, Key=layout.record)["Body"].read())
    record.update(state=state.EXTRACTING, lease_seconds=0, holder={"host": "gone-host", "pid": 1})  # expired
    cfg.s3.put_object(Bucket=cfg.bucket, Key=layout.record, Body=json.dumps(record).encode())
    code, out, err = cli(cfg, "vacuum", course, "--retain-days", "0")
    assert code == 0, err
    assert f"e{record['epoch']}:extracting by run {record['run_id']}; `python -m etl migrate {course}`" in out, out


def test_the_plan_costs_what_the_run_then_sends(make_cfg, contentstore):
    from tests.batch import build_course

    ids = [build_course(contentstore, f"course-v1:Cost+C{i}+R", n=n) for i, n in enumerate([1, 3, 8])]
    cfg = make_cfg(manifest_dir="")
    plan = etl.migrate(cfg, ids, workers=1, dry_run=True)
    assert plan.cost["bytes"] == plan.bytes > 0 and plan.cost["seconds"] > 0
    assert f"cost: about {plan.cost['requests']} S3 requests" in plan.text()
    sent = []
    for client in (cfg.s3, cfg.lease_s3):
        client.meta.events.register("after-call.s3.*", lambda **_: sent.append(1))
    assert etl.migrate(cfg, ids, workers=1).count("promoted") == 3
    assert plan.cost["requests"] == len(sent)  # the README's formula, and the store probe once


def test_a_wait_for_a_held_course_logs_once_when_it_starts_and_once_when_it_ends(make_cfg, contentstore,
                                                                                  monkeypatch):
    import logging
    import threading

    from etl.batch import engines
    from etl.model.layout import new_run_id
    from etl.protocol import claims
    from tests.batch import build_course

    monkeypatch.setattr(engines, "HELD_POLL_SECONDS", 0.02)
    course = build_course(contentstore, "course-v1:Held+Wait+2026", n=2)
    holder = claims.claim(make_cfg(), parse_course_id(course), new_run_id(), state.EXTRACTING)
    holder.stop()  # its heartbeat stops, as a frozen runner's does: the lease runs out by S3's clock only
    cfg = make_cfg()
    said, polled = [], threading.Event()

    def keep(record):
        said.append((record.levelname, record.getMessage()))
        if sum(1 for level, m in said if level == "DEBUG" and "event=course_claimed" in m) >= 5:
            polled.set()

    handler = logging.Handler(logging.DEBUG)
    handler.emit = keep
    logger = logging.getLogger("etl")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        batch = threading.Thread(target=lambda: said.append(("RESULT", etl.migrate(cfg, [course], workers=1))))
        batch.start()
        assert polled.wait(60), said[-5:]  # five polls, each a DEBUG line
        cfg.clock.advance(cfg.lease_seconds + 1)  # the holder's lease runs out: the next poll takes the course
        batch.join(60)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    info = [m for level, m in said if level == "INFO"]
    assert sum("event=course_claimed" in m for m in info) == 1  # the first look, before the wait
    assert sum("event=waiting_for_held" in m for m in info) == 1
    assert sum("event=waited_for_held" in m and "still_held=0" in m for m in info) == 1
    assert said[-1][0] == "RESULT" and said[-1][1].count("promoted") == 1


def test_a_table_never_cuts_a_cell():
    import pandas as pd

    from etl.cli.commands import Frame

    step = "run `python -m etl rollback course-v1:Some+Long+Course_Id_2026 --force`, then " + "x" * 120
    assert step in Frame(pd.DataFrame({"course_id": ["c"], "next_step": [step]}), "").render("table")
