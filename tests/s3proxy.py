"""An HTTP proxy in front of moto's server that fails chosen requests: faults on the real HTTP path."""

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"}


class FaultProxy:
    """Forward S3 requests to ``upstream``; answer with an error those matching a rule."""

    def __init__(self, upstream):
        self.upstream = urlsplit(upstream)
        self.rules = []  # [method, substring of the unquoted path, status, code, remaining or None]
        self.lock = threading.Lock()
        self.seen = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._match(self.command, unquote(self.path))
                if fault:
                    status, code = fault
                    payload = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                               f'<Message>injected by the test proxy</Message></Error>').encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail(self, method, path_contains, status=403, code="AccessDenied", times=None):
        """Fail the next ``times`` matching requests (every one when None)."""
        with self.lock:
            self.rules.append([method, path_contains, status, code, times])

    def _match(self, method, path):
        with self.lock:
            self.seen.append((method, path))
            for rule in self.rules:
                if rule[0] == method and rule[1] in path and rule[4] != 0:
                    if rule[4] is not None:
                        rule[4] -= 1
                    return rule[2], rule[3]
        return None

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
