"""S3 faults on the real HTTP path (a proxy in front of moto): retries get through transient ones,
and persistent ones fail one course cleanly while the batch goes on."""

import etl
from etl.model.layout import Layout, parse_course_id
from tests.batch import build_batch
from tests.helpers import objects, live_objects
from tests.s3proxy import FaultProxy
from tests.test_migrate import assert_promoted_exactly_once


def test_transient_throttling_errors_resets_and_slow_answers_are_retried_through(make_cfg, contentstore, s3_endpoint):
    ids = build_batch(contentstore, 8)
    with FaultProxy(s3_endpoint, seed=7) as proxy:
        proxy.fail(None, status=503, code="SlowDown", rate=0.08)
        proxy.fail(None, status=500, code="InternalError", rate=0.05)
        proxy.reset(None, rate=0.03)
        proxy.reset(None, after_forward=True, rate=0.03)  # the server acted, the answer is lost
        proxy.delay(0.3, rate=0.03)
        summary = etl.migrate(make_cfg(s3_endpoint_url=proxy.url), ids, workers=3, retries=0)
        injected = dict(proxy.injected)
    assert summary.ok and summary.count("promoted") == 8, summary.text()
    assert all(injected.get(k, 0) > 0 for k in ("503", "500", "reset", "reset_after", "delay")), injected
    assert_promoted_exactly_once(make_cfg(), contentstore, ids)


def test_a_persistent_fault_fails_one_course_cleanly_and_the_batch_goes_on(make_cfg, contentstore, s3_endpoint):
    ids = build_batch(contentstore, 5)
    doomed = ids[2]
    with FaultProxy(s3_endpoint) as proxy:
        proxy.fail("PUT", f"/staging/{doomed}/", status=503, code="SlowDown")  # every attempt, every retry
        summary = etl.migrate(make_cfg(s3_endpoint_url=proxy.url, retry_attempts=3), ids, workers=2, retries=1)
    rows = summary.courses.set_index("course_id")
    assert rows.loc[doomed, "outcome"] == "failed" and "SlowDown" in rows.loc[doomed, "error"]
    assert summary.count("promoted") == 4 and not summary.ok
    cfg = make_cfg()
    layout = Layout(cfg, parse_course_id(doomed))
    assert live_objects(cfg, layout) == {} and objects(cfg, layout.staging_root) == {}
    assert_promoted_exactly_once(cfg, contentstore, [c for c in ids if c != doomed])


def test_a_lost_answer_to_a_conditional_write_is_recognised_as_the_tool_s_own(make_cfg, contentstore, s3_endpoint):
    ids = build_batch(contentstore, 3)[1:]
    with FaultProxy(s3_endpoint) as proxy:
        for part in ("/_etl/courses/", "/_COMMIT.json", "/staging/"):
            proxy.reset("PUT", part, after_forward=True, times=2)
        summary = etl.migrate(make_cfg(s3_endpoint_url=proxy.url), ids, workers=1, retries=0)
        assert proxy.injected["reset_after"] == 6
    assert summary.ok and summary.count("promoted") == 2, summary.text()
    assert_promoted_exactly_once(make_cfg(), contentstore, ids)
