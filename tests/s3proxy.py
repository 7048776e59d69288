"""An HTTP proxy in front of moto's server that injects S3 faults on the real HTTP path.

Rules fail matching requests with an error status, reset the connection (before
or after forwarding, so the server may have acted on a request whose answer is
lost), or delay them. A rule matches a method, a substring of the unquoted
path and, if given, a substring of the body, for its next ``times`` requests or
at random with probability ``rate``.
"""

import http.client
import random
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"}


class FaultProxy:
    """Forward S3 requests to ``upstream``, injecting the faults of its rules."""

    def __init__(self, upstream, seed=1, port=0):
        self.upstream = urlsplit(upstream)
        self.rules = []
        self.lock = threading.Lock()
        self.random = random.Random(seed)
        self.injected = {}
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes; with Nagle's algorithm the body then waits for the
            # client's delayed ACK (40 ms on Linux), a stall no S3 endpoint has.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _reset(self):
                self.close_connection = True
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if proxy._denied(unquote(self.path), headers):
                    return self._answer(403, "AccessDenied")
                quirk = proxy._quirk(self.command, unquote(self.path), headers, body)
                if quirk is not None:
                    body, headers, answer = quirk
                    if answer is not None:
                        return self._answer(*answer)
                rule = proxy._match(self.command, unquote(self.path), body)
                kind = rule["kind"] if rule else None
                if kind == "delay":
                    time.sleep(rule["seconds"])
                elif kind == "error":
                    return self._answer(rule["status"], rule["code"])
                elif kind == "reset":
                    return self._reset()
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if kind == "reset_after":  # the server acted; the client never hears of it
                    return self._reset()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                # a HEAD answer has no body but names the object's length, which clients read
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _answer(self, status, code):
                payload = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                           f'<Message>injected by the test proxy</Message></Error>').encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _add(self, kind, method, path_contains, times, rate, body_contains=None, **extra):
        with self.lock:
            self.rules.append(dict(kind=kind, method=method, path=path_contains, times=times, rate=rate,
                                   body=body_contains.encode() if body_contains else None, **extra))

    def fail(self, method, path_contains="", status=403, code="AccessDenied", times=None, rate=None,
             body_contains=None):
        """Answer matching requests with an S3 error (every one when neither times nor rate is given)."""
        self._add("error", method, path_contains, times, rate, body_contains, status=status, code=code)

    def reset(self, method, path_contains="", after_forward=False, times=None, rate=None, body_contains=None):
        """Drop the connection of matching requests, before or after the server acted on them."""
        self._add("reset_after" if after_forward else "reset", method, path_contains, times, rate, body_contains)

    def delay(self, seconds, method=None, path_contains="", times=None, rate=None):
        """Hold matching requests (any method when None) for ``seconds`` before forwarding them."""
        self._add("delay", method, path_contains, times, rate, seconds=seconds)

    def behave(self, strip=(), not_implemented=(), delete_needs_md5=False, flip_bit_in=None, strip_on_delete=()):
        """Act as an S3-compatible store with quirks, for every request from now on.

        ``strip`` drops request headers (``If-None-Match``, ``If-Match``) as a
        store that ignores them would; ``not_implemented`` answers 501 to any
        request carrying one of those headers; ``delete_needs_md5`` refuses a
        DeleteObjects without Content-MD5, as MinIO does; ``flip_bit_in`` flips
        one bit of the body of the next PUT whose path contains it, in transit;
        ``strip_on_delete`` drops headers from DELETE requests only, as a store
        that parses ``If-Match`` on DeleteObject and ignores it would.
        """
        self.quirks = dict(strip={h.lower() for h in strip}, not_implemented={h.lower() for h in not_implemented},
                           delete_needs_md5=delete_needs_md5, flip=flip_bit_in,
                           strip_on_delete={h.lower() for h in strip_on_delete})

    def allow(self, policy):
        """Answer 403 AccessDenied to a request signed with an access key for a bucket ``policy`` does not give it.

        ``policy`` is {access key id: {bucket names}}, as two IAM identities'
        policies would be; ``self.used`` records {access key id: {buckets}} of
        every request let through.
        """
        self.policy, self.used = {key: set(buckets) for key, buckets in policy.items()}, {}

    def _denied(self, path, headers):
        policy = getattr(self, "policy", None)
        if policy is None:
            return False
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        match = re.search(r"Credential=([^/]+)/", auth) or re.search(r"X-Amz-Credential=([^/%]+)", path)
        key, bucket = (match.group(1) if match else None), path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        if bucket not in policy.get(key, ()):
            return True
        with self.lock:
            self.used.setdefault(key, set()).add(bucket)
        return False

    def _quirk(self, method, path, headers, body):
        quirks = getattr(self, "quirks", None)
        if not quirks:
            return None
        lower = {k.lower() for k in headers}
        if lower & quirks["not_implemented"]:
            return body, headers, (501, "NotImplemented")
        if quirks["delete_needs_md5"] and method == "POST" and "?delete" in path:
            missing = "content-md5" not in lower
            with self.lock:
                name = "batch_delete_without_md5" if missing else "batch_delete"
                self.injected[name] = self.injected.get(name, 0) + 1
            if missing:
                return body, headers, (400, "MissingContentMD5")
        headers = {k: v for k, v in headers.items() if k.lower() not in quirks["strip"]}
        if method == "DELETE" and lower & quirks["strip_on_delete"]:
            headers = {k: v for k, v in headers.items() if k.lower() not in quirks["strip_on_delete"]}
            with self.lock:
                self.injected["stripped_on_delete"] = self.injected.get("stripped_on_delete", 0) + 1
        with self.lock:
            flip = quirks["flip"] and method == "PUT" and quirks["flip"] in path and body
            if flip:
                quirks["flip"] = None
                self.injected["flipped"] = self.injected.get("flipped", 0) + 1
        if flip:
            body = body[:-1] + bytes([body[-1] ^ 1])
        return body, headers, None

    def _match(self, method, path, body=b""):
        with self.lock:
            self.requests += 1
            for rule in self.rules:
                if rule["method"] not in (None, method) or rule["path"] not in path or rule["times"] == 0:
                    continue
                if rule["body"] is not None and rule["body"] not in body:
                    continue
                if rule["rate"] is not None and self.random.random() >= rule["rate"]:
                    continue
                if rule["times"] is not None:
                    rule["times"] -= 1
                name = rule["kind"] if rule["kind"] != "error" else str(rule["status"])
                self.injected[name] = self.injected.get(name, 0) + 1
                return rule
        return None

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
