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


class _TlsServer(LoopbackServer):
    tls: Any = None

    def get_request(self):
        sock, addr = super().get_request()
        # the handshake happens on the handler's first read, in its own thread, not in the accept loop
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


def serve(handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", tls: Any = None) -> LoopbackServer:
    """`host`: another address of this machine (a Docker bridge's, for containers); `tls`: an
    ssl.SSLContext to serve https with."""
    httpd = LoopbackServer((host, 0), handler) if tls is None else _TlsServer((host, 0), handler)
    httpd.tls = tls
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def stop(httpd: ThreadingHTTPServer | None) -> None:
    if httpd is not None:
        httpd.shutdown()
        httpd.server_close()
