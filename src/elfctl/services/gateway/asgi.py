"""The gateway as a bare ASGI application: read the request (bounded in size and time), find its
route, authenticate, run the handler, write the answer. No framework: the whole per-request path is
this module and the route table, so the added latency stays near the server's own (~0.1 ms)."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from elfctl.errors import ElfError
from elfctl.services.gateway import errors, routes
from elfctl.services.gateway.errors import ApiError

log = logging.getLogger("elfctl.gateway")

_JSON = [(b"content-type", b"application/json")]
# Handlers block on the store and on providers for up to the call's timeout: a request waiting on a
# stalled provider holds one thread. 64 keeps 32 concurrent clients (the benchmark) and stalls apart.
_THREADS = 64


class _ScrubbingFormatter(logging.Formatter):
    # times in UTC as ISO-8601 (2026-12-31T23:59:59.123Z), like every other time elfctl shows; the
    # default is the host's local time with no zone, which cannot be lined up with ledger rows
    converter = staticmethod(time.gmtime)
    default_time_format, default_msec_format = "%Y-%m-%dT%H:%M:%S", "%s.%03dZ"

    def format(self, record: logging.LogRecord) -> str:
        from elfctl.redact import scrub

        return scrub(super().format(record))  # the message and any traceback


def log_to_stderr() -> None:
    """For a gateway process (not a library user): its own log lines (elfctl.*) on stderr, warnings and up, with anything secret
    (provider keys read by this process, URL passwords) scrubbed from messages and tracebacks."""
    root = logging.getLogger("elfctl")
    if not any(isinstance(h.formatter, _ScrubbingFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(_ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
        root.propagate = False


def _load_endpoints() -> None:
    """Import every module of the endpoints package: each adds its routes to routes.ROUTES."""
    import importlib
    import pkgutil

    from elfctl.services.gateway import endpoints

    for info in sorted(pkgutil.iter_modules(endpoints.__path__), key=lambda i: i.name):
        importlib.import_module(f"{endpoints.__name__}.{info.name}")


class Server:
    """The ASGI callable. `gateway` is the process's app.Gateway (config, store, Caller, keys)."""

    def __init__(self, gateway: Any):
        _load_endpoints()
        self.gateway = gateway
        self.table = routes.Table(routes.ROUTES)
        self.max_body = int(gateway.config.get("gateway.max_body_bytes"))
        self.idle_s = float(gateway.config.get("gateway.idle_timeout_s"))
        self.pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="gateway")
        self._is_async: dict[Any, bool] = {}

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await asyncio.get_running_loop().run_in_executor(self.pool, self.gateway.start)
                except Exception as exc:  # noqa: BLE001 - the server reports it and exits
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await asyncio.get_running_loop().run_in_executor(self.pool, self.gateway.close)
                self.pool.shutdown(wait=False)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        try:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            route, params = self.table.match(scope["method"], scope["path"])
            key = None
            if not route.public:  # before the body: a caller without a key never makes the gateway hold one
                key = await self._authenticate(headers)
            body = await self._body(headers, receive)
            query = {}
            if scope.get("query_string"):
                from urllib.parse import parse_qsl

                query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
            client = scope.get("client")
            req = routes.Request(scope["method"], scope["path"], headers, body, query, params, key, self.gateway,
                                 client[0] if client else None)
            is_async = self._is_async.get(route.handler)
            if is_async is None:  # inspect costs ~10 us: once per handler
                is_async = self._is_async[route.handler] = inspect.iscoroutinefunction(route.handler)
            if is_async:
                answer = await route.handler(req)
            else:
                answer = await asyncio.get_running_loop().run_in_executor(self.pool, route.handler, req)
            if not isinstance(answer, tuple):  # a sync handler's rest, to run on the loop (routes.py)
                answer = await answer
            status, out_headers, out = answer
            first = await anext(out, b"") if hasattr(out, "__anext__") else None  # a stream fails here, unsent
        except ApiError as exc:
            await self._error(send, exc)
            return
        except ElfError as exc:
            await self._error(send, errors.from_elf(exc))
            return
        except Exception:  # noqa: BLE001 - a bug: the client learns nothing of it, the log does
            log.exception("gateway: %s %s failed", scope["method"], scope["path"])
            await self._error(send, ApiError(500, "internal error in the gateway", type="api_error"))
            return
        try:
            await self._answer(send, status, out_headers, out, receive, first)
        except Exception:  # noqa: BLE001 - the answer had begun: nothing more can be sent, only logged
            log.exception("gateway: %s %s failed while answering", scope["method"], scope["path"])

    async def _body(self, headers: dict[str, str], receive) -> bytes:
        """The whole body, at most max_body bytes, each part within the idle timeout. A refusal
        raises ApiError saying `connection: close`: the rest of an oversized or stalled body is
        never read."""
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise self._too_large()
        parts, size = [], 0
        while True:
            try:
                msg = await asyncio.wait_for(receive(), self.idle_s)
            except TimeoutError:
                raise ApiError(408, f"the request body did not arrive within {self.idle_s:g} s "
                               "(gateway.idle_timeout_s)", code="request_timeout",
                               headers={"connection": "close"}) from None
            if msg["type"] == "http.disconnect":
                raise ApiError(400, "the client went away", code="client_disconnected")
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise self._too_large()
            parts.append(chunk)
            if not msg.get("more_body"):
                return b"".join(parts)

    def _too_large(self) -> ApiError:
        return ApiError(413, f"the request body is over {self.max_body} bytes (gateway.max_body_bytes)",
                        code="request_too_large", headers={"connection": "close"})

    async def _authenticate(self, headers: dict[str, str]):
        auth = headers.get("authorization", "")
        scheme, _, raw = auth.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise errors.unauthorized()
        raw = raw.strip()
        # A cached answer costs microseconds; a store query would block the loop, so it goes to a thread.
        done, key = self.gateway.auth.peek(raw)
        if not done:
            key = await asyncio.get_running_loop().run_in_executor(self.pool, self.gateway.auth.lookup, raw)
        if key is None:
            raise errors.unauthorized()
        return key

    async def _error(self, send, exc: ApiError) -> None:
        await self._answer(send, exc.status, exc.headers, exc.body())

    async def _answer(self, send, status: int, headers: dict[str, str], out: Any, receive=None,
                      first: bytes | None = None) -> None:
        raw_headers = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in (headers or {}).items()]
        if isinstance(out, dict | list):
            out = json.dumps(out).encode()
        if isinstance(out, str):
            out = out.encode()
        if isinstance(out, bytes | bytearray):
            if not any(k == b"content-type" for k, _ in raw_headers):
                raw_headers += _JSON
            raw_headers.append((b"content-length", str(len(out)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": bytes(out)})
            return
        await self._stream(send, receive, status, raw_headers, out, first)

    async def _stream(self, send, receive, status: int, raw_headers: list, out: Any,
                      first: bytes | None) -> None:
        """An async iterator of bytes, sent as it comes (server-sent events), `first` its first part,
        read by _http before the status so that what fails there is an HTTP error. A client that goes
        away cancels the iteration where it waits (its `finally` runs: e.g. recording what was
        generated), and the iterator is closed in every case."""
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})

        async def pump() -> None:
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            async for chunk in out:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        sending, watching = asyncio.ensure_future(pump()), asyncio.ensure_future(watch())
        try:
            done, _ = await asyncio.wait({sending, watching}, return_when=asyncio.FIRST_COMPLETED)
            if sending in done:
                sending.result()  # an error inside the iterator surfaces here (logged by the caller)
            else:
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
        finally:
            watching.cancel()
            aclose = getattr(out, "aclose", None)
            if aclose is not None:
                await aclose()
