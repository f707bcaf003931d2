"""uvicorn, the gateway's HTTP server: the only module importing it.

uvicorn with httptools (the HTTP parser in C) and uvloop runs a bare ASGI app with ~0.1 ms of its own
per request, and its supervisor runs N worker processes on one socket. One gap is closed here:
uvicorn times out only idle keep-alive connections, so a client that connects and sends nothing, or
half a request line and headers, would hold a connection forever (slowloris). `_Protocol` closes a
connection whose request headers are not complete within the idle timeout of its first byte (or of
the connection itself); a half-sent body is bounded by the app (asgi.Server._body)."""

from __future__ import annotations

from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _Protocol(HttpToolsProtocol):
    _header_deadline = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_deadline = self.loop.call_later(self.timeout_keep_alive, self._expire)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expire(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def _loop() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def _check_address(host: str, port: int) -> None:
    """Refuse, with one clear line, a host this machine cannot listen on or a port already taken
    (uvicorn would log its own error and exit 3, after announcing the server)."""
    import errno
    import socket

    from elfctl.errors import InputError, OperationFailed

    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as exc:
        raise InputError(f"--host {host!r}: not an address to listen on ({exc})",
                         hint="give an IP address of this machine, e.g. 127.0.0.1 or 0.0.0.0 (gateway.host)") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OperationFailed(f"port {port} on {host} is already in use",
                                      hint="stop what listens there, or give another --port (gateway.port)") from None
            raise InputError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})",
                             hint="give an address of this machine and a free port") from None


def run(factory: str, host: str, port: int, workers: int, idle_timeout_s: float,
        on_ready: Callable[[str], None] = lambda _url: None) -> None:
    """Serve the ASGI app that `factory` ("module:function") builds in each worker, until SIGINT or
    SIGTERM (then requests in flight finish, up to the idle timeout)."""
    import uvicorn

    _check_address(host, port)
    on_ready(f"http://{host}:{port}")
    uvicorn.run(
        factory, factory=True, host=host, port=port, workers=workers, loop=_loop(), http=_Protocol,
        lifespan="on", timeout_keep_alive=idle_timeout_s, timeout_graceful_shutdown=int(idle_timeout_s) + 1,
        access_log=False, log_level="warning", server_header=False, date_header=False, proxy_headers=False,
        backlog=2048,
    )
