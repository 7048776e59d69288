"""Freeze a runner at a chosen S3 request, as a GC pause, a suspended VM or a partition would.

A ``Freezer`` hooks one runner's own boto3 client. Once its trigger fires, every
request that client sends, from any of the runner's threads (its heartbeat too),
blocks until ``release()``. The test then acts with a second Config and client,
and releases the first runner when it chooses: a deterministic interleaving.
"""

import threading


class Freezer:
    """Block every request of ``cfg``'s S3 client from the moment a trigger fires until released.

    ``before(operation, key, body)`` fires as a request is about to be built,
    which it then holds; ``after`` fires once a request has succeeded, and holds
    everything after it.
    """

    def __init__(self, cfg, before=None, after=None, any_answer=False):
        self.before, self.after, self.any_answer = before, after, any_answer
        self.reached, self.passed = threading.Event(), threading.Event()
        self._go_held, self._go_all = threading.Event(), threading.Event()
        self.frozen, self.held = False, None
        for client in (cfg.s3, cfg.lease_s3):  # a frozen process freezes its heartbeat too
            client.meta.events.register("before-parameter-build.s3.*", self._before)
            client.meta.events.register("after-call.s3.*", self._after)

    def _before(self, params, model, context, **_):
        context["freeze_key"], context["freeze_body"] = params.get("Key"), params.get("Body")
        if not self.frozen and self.before and self.before(model.name, params.get("Key"), params.get("Body")):
            self.frozen, self.held = True, context
            self.reached.set()
        if self.frozen:
            (self._go_held if context is self.held else self._go_all).wait(120)

    def _after(self, model, context, http_response=None, **_):
        ok = http_response is not None and (self.any_answer or http_response.status_code < 300)
        if context is self.held and self.held is not None:
            self.passed.set()
        elif ok and not self.frozen and self.after and self.after(
                model.name, context.get("freeze_key"), context.get("freeze_body")):
            self.frozen = True
            self.reached.set()

    def wait(self, timeout=60):
        """Wait until the runner is frozen."""
        assert self.reached.wait(timeout), "the runner never reached its freeze point"

    def let_through(self, timeout=60):
        """Let only the held request go, and wait until it is answered; the runner stays frozen after it."""
        self._go_held.set()
        assert self.passed.wait(timeout), "the held request was never answered"

    def release(self):
        """Let the runner go on."""
        self._go_held.set()
        self._go_all.set()


def nth_answer(n):
    """Return a trigger that fires once the runner's ``n``-th request (counted from 1) has been answered."""
    seen = [0]
    lock = threading.Lock()

    def match(operation, key, body):
        with lock:
            seen[0] += 1
            return seen[0] == n
    return match


def put_of(key, contains=None):
    """Return a trigger that fires on a PutObject of ``key`` (whose body contains ``contains``, if given)."""
    def match(operation, request_key, body):
        if operation != "PutObject" or request_key != key:
            return False
        return contains is None or (isinstance(body, bytes) and contains.encode() in body)
    return match


def first_put(operation, key, body):
    """Fire on the runner's first write of any kind."""
    return operation == "PutObject"


class Runner(threading.Thread):
    """Run ``fn`` on a thread and keep its result or the exception it raised."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None

    def run(self):
        try:
            self.result = self.fn()
        except Exception as err:  # the test asserts which one
            self.error = err

    def outcome(self, timeout=120):
        self.join(timeout)
        assert not self.is_alive(), "the runner did not finish"
        return type(self.error).__name__ if self.error else "ok"
