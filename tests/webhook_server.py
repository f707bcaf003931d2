"""A loopback webhook receiver for tests: records each POST (path, headers, JSON body), and can
answer 500, stall, or answer 410 Gone.

    hook = WebhookServer().start()
    hook.url("/slack")                 # http://127.0.0.1:PORT/slack
    hook.behave(status=500)            # every request from now on (status=200 again to heal)
    hook.behave(stall=10)              # hold each request 10 s before answering
    hook.received                      # [{"path", "headers", "json"}], in arrival order
    hook.wait_for(n, timeout)          # until n requests arrived (False on timeout)
    hook.stop()
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests import loopback


class WebhookServer:
    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status, self.stall = 200, 0.0
        self._cond = threading.Condition()
        self._httpd: ThreadingHTTPServer | None = None

    def behave(self, status: int = 200, stall: float = 0.0) -> WebhookServer:
        self.status, self.stall = status, stall
        return self

    def url(self, path: str = "/hook") -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def wait_for(self, n: int, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < n:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def start(self) -> WebhookServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if server.stall:
                    time.sleep(server.stall)
                status = server.status
                with server._cond:
                    server.received.append({"path": self.path, "headers": dict(self.headers), "raw": raw,
                                            "json": json.loads(raw or b"null"), "status": status})
                    server._cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args):
                pass

        self._httpd = loopback.serve(Handler)
        return self

    def stop(self) -> None:
        loopback.stop(self._httpd)
