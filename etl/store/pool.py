"""Run S3 requests in parallel on the Config's one bounded pool, each in its caller's context (lease guard included)."""

import contextvars
import threading
from concurrent.futures import FIRST_COMPLETED, wait


def submit(cfg, fn, *args):
    """Run ``fn(*args)`` on the shared S3 pool in the caller's context, so its lease guard goes along."""
    return cfg.s3_pool.submit(contextvars.copy_context().run, fn, *args)


def run_all(cfg, fn, items):
    """Run ``fn`` over items on the shared S3 pool; return the results in order, or raise the first error.

    At most four times the pool's width are in flight or queued at once, so memory
    stays bounded however many items there are; after an error nothing new starts.
    Nothing is left in flight when this returns or raises, so a caller's record of
    what was written is complete before any cleanup starts.
    """
    results, errors, pending = [], [], {}
    window = 4 * cfg.s3_concurrency

    def settle(done):
        for future in done:
            index = pending.pop(future)
            if future.exception() is not None:
                errors.append((index, future.exception()))
            else:
                results[index] = future.result()

    for index, item in enumerate(items):
        while len(pending) >= window:
            settle(wait(pending, return_when=FIRST_COMPLETED).done)
        if errors:
            break
        results.append(None)
        pending[submit(cfg, fn, item)] = index
    settle(wait(pending).done)
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    return results


def together(*calls):
    """Run zero-argument calls at the same time; return their results in order.

    Independent requests of one step (a listing, a manifest, a contentstore query)
    then cost one round trip instead of several. Each call runs on its own thread,
    never on the shared pool, so it may use the pool itself without waiting on its
    caller. All calls finish before this returns or raises the first error.
    """
    results, errors = [None] * len(calls), [None] * len(calls)

    def run(i):
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # handed to the caller below, in call order
            errors[i] = exc

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(run, i), daemon=True)
               for i in range(1, len(calls))]
    for t in threads:
        t.start()
    run(0)
    for t in threads:
        t.join()
    for exc in errors:
        if exc is not None:
            raise exc
    return results
