"""s3.together: independent requests of one step run at once, and fail only after all have finished."""

import threading

import pytest

from etl.store import pool


def test_results_come_back_in_call_order_from_concurrent_calls():
    started = threading.Barrier(3, timeout=5)  # passes only if all three run at the same time

    def call(value):
        started.wait()
        return value

    assert pool.together(lambda: call("a"), lambda: call("b"), lambda: call("c")) == ["a", "b", "c"]


def test_the_first_error_in_call_order_is_raised_after_every_call_has_finished():
    finished, failing = [], threading.Semaphore(0)

    def slow():  # finishes only once both other calls have failed
        for _ in range(2):
            assert failing.acquire(timeout=5)
        finished.append("slow")
        return 1

    def fails(message):
        failing.release()
        raise ValueError(message)

    with pytest.raises(ValueError, match="first"):
        pool.together(slow, lambda: fails("first"), lambda: fails("second"))
    assert finished == ["slow"]  # nothing was left running behind the error
