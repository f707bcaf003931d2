"""The one way the tests' loopback HTTP servers (llm_server, webhook_server, postgrest_server) start
and stop: a threading server on 127.0.0.1, an ephemeral port, served from a daemon thread."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops or resets the connections of a burst (a gateway opening
    # one per concurrent stream, 50 concurrent rpc reservations), which then wait out TCP's 1 s
    # retransmission; a real server listens with the system's backlog.
    request_queue_size = 128
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up: nothing to report
            return
        super().handle_error(request, client_address)


def serve(handler: type[BaseHTTPRequestHandler]) -> LoopbackServer:
    httpd = LoopbackServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def stop(httpd: ThreadingHTTPServer | None) -> None:
    if httpd is not None:
        httpd.shutdown()
        httpd.server_close()
