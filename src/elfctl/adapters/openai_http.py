"""OpenAI-protocol providers over plain HTTP: the gateway's fast path.

A request the gateway accepted is already in the OpenAI wire format, so for a provider that speaks
it (OpenAI itself, or any compatible server at OPENAI_BASE_URL) it is forwarded as JSON and the
provider's answer comes back byte for byte; litellm's client costs ~9.5 ms of CPU a call, this ~0.3.
Usage is read from the answer's `usage` (the same reader as the litellm path), so prices stay exact.

`Client` has the operations the Caller uses of any LLM client (complete, acomplete, provider_of,
count_prompt_tokens): the Caller's budget, breakers, retries and fallbacks run unchanged around it.
Errors become litellm_client.LLMError with the same `kind`s; a provider's own 4xx answer keeps its
body (`ProviderRejected.body`) so the gateway can pass it through.

Sync calls (the gateway's worker threads) go through the standard library's http.client over a pool
of keep-alive connections: ~0.15 ms of CPU a request against httpx's ~0.5 ms, which was the largest
single cost of a gateway call. Async calls and streams go over asyncio's own streams, pooled per event loop
(`_AsyncPool`): httpx was most of a streamed call's CPU in the gateway's profile.

kwargs the Caller adds for itself (timeout, max_retries, metadata) are not sent; `api_key` becomes
the Authorization header. `endpoint` picks the path: "chat/completions" (default) or "embeddings".
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from elfctl.adapters.litellm_client import Answer, LLMError, usage_of
from elfctl.domain.ratelimit import headers_of

# The Caller's own kwargs, never part of the provider's request.
_CONTROL = frozenset({"timeout", "max_retries", "metadata", "api_key", "endpoint"})
_ENDPOINTS = ("chat/completions", "embeddings")
DEFAULT_BASE = "https://api.openai.com/v1"
MAX_LINE = 16 << 20  # one server-sent event line of a stream (a chunk's JSON): far above any real one


@dataclass
class Forwarded:
    """A provider's answer as it came: `body` is sent to the client unchanged; `data` is it parsed."""

    status: int
    body: bytes
    data: dict
    headers: dict[str, str]
    limits: dict[str, str] = field(default_factory=dict)  # the provider's x-ratelimit-* headers, lower-cased


class ProviderRejected(LLMError):
    """The provider refused the request itself (4xx other than 408/409/429): `body` is its error."""

    def __init__(self, message: str, *, status: int, body: dict | None, kind: str):
        super().__init__(message, "the request itself is wrong: check the model name and arguments",
                         status=status, transient=False, kind=kind)
        self.body = body


def _retry_after(headers) -> float | None:
    raw = headers.get("retry-after")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _transport_error(model: str, exc: Exception, timeout: float) -> LLMError:
    """A socket, asyncio or http.client error before any answer: a timeout, or a connection that failed
    or broke."""
    timed_out = isinstance(exc, TimeoutError)  # socket.timeout and asyncio's timeout are TimeoutError
    if timed_out:
        return LLMError(f"{model}: timeout after {timeout:g}s ({type(exc).__name__})", None,
                        transient=True, kind="timeout")
    return LLMError(f"{model}: connection ({type(exc).__name__}): {str(exc)[:200]}", None,
                    transient=True, kind="connection")


def _error_of(model: str, status: int, raw: bytes, headers) -> LLMError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    detail = err.get("message") if isinstance(err, dict) else raw[:200].decode(errors="replace")
    msg = f"{model}: {{kind}} ({status}): {str(detail).splitlines()[0][:300] if detail else ''}"
    if status == 429:
        return LLMError(msg.format(kind="rate_limit"), "the provider is rate limiting: lower the call rate "
                        "or raise the quota", status=status, transient=True, retry_after=_retry_after(headers),
                        kind="rate_limit")
    if status in (401, 403):
        return LLMError(msg.format(kind="auth"), "check the provider key (environment or credential store)",
                        status=status, kind="auth")
    if status >= 500:
        return LLMError(msg.format(kind="server"), "the provider may be down; the fallback chain and breaker "
                        "handle repeated failures", status=status, transient=True, kind="server")
    if status in (408, 409):
        return LLMError(msg.format(kind="error"), None, status=status, transient=True, kind="error")
    return ProviderRejected(msg.format(kind="bad_request"), status=status,
                            body=body if isinstance(err, dict) else None, kind="bad_request")


class Client:
    """One provider base URL; one pooled HTTP client per process for sync calls, one per event loop
    for async ones."""

    # Called with (model, its x-ratelimit-* headers) when a stream's head arrives, on the event loop
    # (an Answer carries them in Forwarded.limits, an error in LLMError.limits). Set by whoever keeps them.
    on_limits: Any = None

    def __init__(self, base_url: str | None = None, max_connections: int = 256):
        self.base_url = (base_url or DEFAULT_BASE).rstrip("/")
        self.max_connections = max_connections
        self._sync = None
        self._apools: dict[int, _AsyncPool] = {}  # async calls' and streams' connections, per event loop
        self._lock = threading.Lock()

    # -- what the Caller uses ---------------------------------------------------------------------
    @staticmethod
    def provider_of(model: str) -> str | None:
        return model.split("/", 1)[0] if "/" in model else "openai"

    @staticmethod
    def count_prompt_tokens(model: str, kwargs: dict[str, Any]) -> int:
        """As litellm counts them (the budget estimate must not depend on which client calls);
        embeddings' `input` is counted as one user message per string."""
        from elfctl.adapters import litellm_client

        if "messages" not in kwargs and "input" in kwargs:
            items = kwargs["input"] if isinstance(kwargs["input"], list) else [kwargs["input"]]
            if all(isinstance(i, int) for i in items):
                return len(items)
            if all(isinstance(i, list) for i in items):
                return sum(len(i) for i in items)
            kwargs = {"messages": [{"role": "user", "content": str(i)} for i in items]}
        return litellm_client.count_prompt_tokens(model, kwargs)

    def complete(self, model: str, kwargs: dict[str, Any]) -> Answer:
        import http.client

        url, body, headers, timeout = self._request(model, kwargs)
        try:
            status, raw, got = self._pool().post(url, body, headers, timeout)
        except (OSError, http.client.HTTPException) as exc:
            raise _transport_error(model, exc, timeout) from None
        return self._answer(model, status, raw, got)

    async def acomplete(self, model: str, kwargs: dict[str, Any]) -> Answer:
        """As `complete`, on the event loop's connection pool (the streams' one): `timeout` bounds the
        whole exchange, connecting to the last byte of the answer."""
        import asyncio

        url, body, headers, timeout = self._request(model, kwargs)
        r = None
        try:
            async with asyncio.timeout(timeout):
                r = await self._apool().send(url, body, headers, timeout)
                raw = await r.read()
        except (EOFError, ValueError) as exc:  # cut inside the body (IncompleteReadError), a broken framing
            what = "closed the connection mid-answer" if isinstance(exc, EOFError) else f"broke HTTP ({exc})"
            raise _transport_error(model, ConnectionError(f"the provider {what}"), timeout) from None
        except OSError as exc:  # TimeoutError included
            raise _transport_error(model, exc, timeout) from None
        finally:
            if r is not None:
                r.release()
        return self._answer(model, r.status, raw, r.headers)

    # -- the wire -------------------------------------------------------------------------------------
    def _request(self, model: str, kwargs: dict[str, Any]) -> tuple[str, bytes, dict[str, str], float]:
        endpoint = kwargs.get("endpoint") or "chat/completions"
        if endpoint not in _ENDPOINTS:
            raise ValueError(f"endpoint {endpoint!r}")
        payload = {k: v for k, v in kwargs.items() if k not in _CONTROL}
        payload["model"] = model.split("/", 1)[1] if model.startswith("openai/") else model
        headers = {"content-type": "application/json"}
        if kwargs.get("api_key"):
            headers["authorization"] = f"Bearer {kwargs['api_key']}"
        timeout = kwargs.get("timeout")
        return (f"{self.base_url}/{endpoint}", json.dumps(payload).encode(), headers,
                float(timeout) if isinstance(timeout, int | float) else 600.0)

    def _answer(self, model: str, status: int, raw: bytes, headers) -> Answer:
        if status >= 300:
            err = _error_of(model, status, raw, headers)
            err.limits = headers_of(headers)  # a 429 states the limit it hit
            raise err
        try:
            data = json.loads(raw)
        except ValueError:
            raise LLMError(f"{model}: server ({status}): the answer is not JSON", None, status=502,
                           transient=True, kind="server") from None
        if not isinstance(data, dict):
            raise LLMError(f"{model}: server ({status}): the answer is not a JSON object", None, status=502,
                           transient=True, kind="server")
        fwd = Forwarded(status, raw, data, {"content-type": headers.get("content-type", "application/json")},
                        headers_of(headers))
        return Answer(fwd, model, self.provider_of(model), *usage_of(data))

    def _seen(self, model: str, headers) -> None:
        """A stream head's rate-limit headers to on_limits, never failing the stream."""
        limits, hook = headers_of(headers), self.on_limits
        if hook is not None and limits:
            try:
                hook(model, limits)
            except Exception:  # noqa: BLE001 (keeping them is a side matter: the answer is served)
                pass

    def _pool(self) -> _Pool:
        pool = self._sync
        if pool is None or pool.pid != os.getpid():  # first use, or a forked child: its own sockets
            with self._lock:
                if self._sync is None or self._sync.pid != os.getpid():
                    self._sync = _Pool(self.base_url, self.max_connections)
                pool = self._sync
        return pool

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    # -- streaming (gw-stream) ----------------------------------------------------------------------
    @staticmethod
    def count_text_tokens(model: str, text: str) -> int:
        """Tokens of generated text (a stream cut short has no usage of its own), as litellm counts."""
        from elfctl.adapters import litellm_client

        return litellm_client.count_text_tokens(model, text)

    def astream(self, model: str, kwargs: dict[str, Any]) -> AsyncIterator[bytes]:
        """The provider's server-sent events, each `data:` chunk's JSON as the provider sent it (bytes,
        unparsed: the gateway forwards them as they are), until `data: [DONE]`. A non-2xx
        answer raises as `acomplete` would; an `{"error": ...}` event, a cut connection or a timeout
        raise LLMError. The request is prepared here, at once (imports, the pooled client), so a
        caller timing the first chunk times the provider. `timeout` bounds connecting and sending
        only: a stream may rightly last long, so its reads are timed by the caller
        (services/llm/stream.py: the first chunk within the attempt's timeout, then each gap). Closing
        the iterator closes the connection, so the provider stops generating."""
        url, body, headers, timeout = self._request(model, kwargs)
        headers["accept"] = "text/event-stream"
        return self._events(model, self._apool(), url, body, headers, timeout, self._seen)

    @staticmethod
    async def _events(model: str, pool: _AsyncPool, url: str, body: bytes, headers: dict, timeout: float,
                      seen=None):
        r = None
        try:
            r = await pool.send(url, body, headers, timeout)
            if seen is not None:  # the head: the rate limit is known before the first chunk
                seen(model, r.headers)
            if r.status >= 300:
                err = _error_of(model, r.status, await r.read(), r.headers)
                err.limits = headers_of(r.headers)
                raise err
            lines = r.lines()
            async for line in lines:
                if line.startswith(b"data:"):  # else a comment (keep-alive), an event name, a blank line
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        await _drain(lines)
                        return
                    yield _checked(model, data)
        except (EOFError, ValueError) as exc:  # cut inside a chunk (IncompleteReadError), a broken framing
            what = "closed the connection mid-answer" if isinstance(exc, EOFError) else f"broke HTTP ({exc})"
            raise _transport_error(model, ConnectionError(f"the provider {what}"), timeout) from None
        except OSError as exc:  # TimeoutError (connecting, sending) included
            raise _transport_error(model, exc, timeout) from None
        finally:
            if r is not None:
                r.release()

    def _apool(self) -> _AsyncPool:
        import asyncio

        loop = id(asyncio.get_running_loop())
        pool = self._apools.get(loop)
        if pool is None:
            pool = self._apools[loop] = _AsyncPool(self.base_url, self.max_connections)
        return pool


class _Pool:
    """Keep-alive http.client connections to one origin, shared by threads: a request takes an idle
    connection (or opens one) and gives it back when its answer is read. A connection the server has
    closed while idle is noticed before reuse (its socket reads as ready: EOF) and dropped, so a POST is
    never sent on a dead connection; any later failure is the Caller's (a transient `connection` error,
    retried as with httpx). `timeout` bounds connecting and each send and read, as httpx's does."""

    def __init__(self, base_url: str, size: int):
        from urllib.parse import urlsplit

        u = urlsplit(base_url)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname or "", u.port or (443 if self.https else 80)
        self.origin = f"{u.scheme}://{u.netloc}"  # stripped from each URL: the request line has the path
        self.size = size
        self.pid = os.getpid()
        self._idle: list[Any] = []  # list.pop/append are atomic: no lock on the hot path
        self._ssl = None

    def _open(self, timeout: float):
        import http.client

        if not self.https:
            return http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        if self._ssl is None:
            import ssl

            self._ssl = ssl.create_default_context()
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self._ssl)

    def _take(self, timeout: float):
        import select

        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return self._open(timeout)
            sock = conn.sock
            if sock is None or select.select([sock], [], [], 0)[0]:  # closed, or EOF/junk waiting: stale
                conn.close()
                continue
            conn.timeout = timeout
            sock.settimeout(timeout)
            return conn

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float):
        """(status, body, headers) of one POST; raises OSError or http.client.HTTPException."""
        conn = self._take(timeout)
        try:
            conn.request("POST", url[len(self.origin):] if url.startswith(self.origin) else url, body, headers)
            r = conn.getresponse()
            raw = r.read()
        except BaseException:
            conn.close()
            raise
        if r.will_close or len(self._idle) >= self.size:
            conn.close()
        else:
            self._idle.append(conn)
        return r.status, raw, r.headers

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class _AsyncPool:
    """Keep-alive asyncio connections to one origin, for the streams of one event loop: HTTP/1.1 with
    only what a provider's answer needs (a status line, headers, a chunked, sized or until-close
    body). `timeout` bounds connecting and sending; reading the answer is timed by the caller (a
    stream may rightly last long). A connection goes back to the pool only once its answer was read
    to its end; any other ending closes it, so the provider sees the client gone and stops."""

    def __init__(self, base_url: str, size: int):
        from urllib.parse import urlsplit

        u = urlsplit(base_url)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname or "", u.port or (443 if self.https else 80)
        self.origin = f"{u.scheme}://{u.netloc}"
        self.host_header = u.netloc.rpartition("@")[2]
        self.size = size
        self._idle: list[tuple[Any, Any]] = []
        self._ssl = None

    async def _connect(self, timeout: float):
        import asyncio

        while self._idle:
            reader, writer = self._idle.pop()
            if reader.at_eof() or writer.is_closing():  # the server closed it while it was idle
                writer.close()
                continue
            return reader, writer
        if self.https and self._ssl is None:
            import ssl

            self._ssl = ssl.create_default_context()
        async with asyncio.timeout(timeout):
            return await asyncio.open_connection(self.host, self.port, ssl=self._ssl if self.https else None)

    async def send(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> _AsyncResponse:
        """POST `body`; the answer once its status line and headers are read. Raises OSError."""
        import asyncio

        reader, writer = await self._connect(timeout)
        try:
            path = url[len(self.origin):] if url.startswith(self.origin) else url
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            writer.write(f"POST {path} HTTP/1.1\r\nhost: {self.host_header}\r\ncontent-length: {len(body)}\r\n"
                         f"{head}\r\n".encode("latin-1") + body)
            async with asyncio.timeout(timeout):
                await writer.drain()
            line = await reader.readline()
            parts = line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
                raise ConnectionError(f"not an HTTP answer: {line[:80]!r}" if line else "closed before answering")
            got: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b"\n"):
                if not line:
                    raise ConnectionError("closed in the middle of the answer's headers")
                name, _, value = line.decode("latin-1").partition(":")
                got[name.strip().lower()] = value.strip()
        except BaseException:
            writer.close()
            raise
        keep = parts[0] != b"HTTP/1.0" and "close" not in got.get("connection", "").lower()
        return _AsyncResponse(self, reader, writer, int(parts[1]), got, keep)

    def give(self, reader, writer) -> None:
        if len(self._idle) < self.size:
            self._idle.append((reader, writer))
        else:
            writer.close()


class _AsyncResponse:
    """An answer being read from one pooled connection."""

    def __init__(self, pool: _AsyncPool, reader, writer, status: int, headers: dict[str, str], keep: bool):
        self.pool, self.reader, self.writer = pool, reader, writer
        self.status, self.headers, self.keep = status, headers, keep
        self.complete = False  # the body was read to its end: the connection may serve another request

    async def _pieces(self) -> AsyncIterator[bytes]:
        r = self.reader
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            while True:
                line = await r.readline()
                if not line.endswith(b"\n"):
                    raise ConnectionError("the provider closed the connection mid-answer")
                size = int(line.split(b";", 1)[0], 16)  # a bad size line: ValueError, a broken answer
                if size == 0:
                    while (line := await r.readline()) not in (b"\r\n", b"\n", b""):  # trailers
                        pass
                    self.complete = True
                    return
                yield (await r.readexactly(size + 2))[:-2]
        elif self.headers.get("content-length", "").isdigit():
            left = int(self.headers["content-length"])
            while left:
                data = await r.read(min(left, 1 << 16))
                if not data:
                    raise ConnectionError("the provider closed the connection mid-answer")
                left -= len(data)
                yield data
            self.complete = True
        else:  # the body lasts until the server closes the connection
            self.keep = False
            while data := await r.read(1 << 16):
                yield data
            self.complete = True

    async def read(self) -> bytes:
        return b"".join([p async for p in self._pieces()])

    async def lines(self) -> AsyncIterator[bytes]:
        """The body's lines, without their line ends. A line longer than MAX_LINE is a broken answer
        (ValueError): a provider sending one endless line would otherwise grow it without bound."""
        rest = b""
        async for piece in self._pieces():
            *done, rest = (rest + piece).split(b"\n")
            if len(rest) > MAX_LINE:
                raise ValueError(f"a line of its answer is over {MAX_LINE >> 20} MiB")
            for line in done:
                yield line[:-1] if line.endswith(b"\r") else line
        if rest:
            yield rest

    def release(self) -> None:
        if self.complete and self.keep:
            self.pool.give(self.reader, self.writer)
        else:
            self.writer.close()


def speaks_openai(model: str) -> bool:
    """Whether the model's provider takes OpenAI's wire format as is (OpenAI, or a compatible
    server at OPENAI_BASE_URL): a bare model name or `openai/...`."""
    return "/" not in model or model.startswith("openai/")


class Routed:
    """The gateway's LLM client: OpenAI-protocol models through `http` (forwarded as they are),
    every other provider through `other` (litellm, which translates)."""

    def __init__(self, http: Client, other: Any):
        self.http = http
        self.other = other

    def provider_of(self, model: str) -> str | None:
        return (self.http if speaks_openai(model) else self.other).provider_of(model)

    def warm(self) -> None:
        """Import litellm (its tokenizer counts the prompts of budgeted calls): seconds, once."""
        self.other.sdk()

    def count_prompt_tokens(self, model: str, kwargs: dict[str, Any]) -> int:
        return self.http.count_prompt_tokens(model, kwargs)

    def _other_kwargs(self, model: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        if kwargs.get("endpoint", "chat/completions") != "chat/completions":
            raise ProviderRejected(f"{model}: bad_request (400): {kwargs['endpoint']} is forwarded to "
                                   "OpenAI-protocol providers only", status=400, body=None, kind="bad_request")
        return {k: v for k, v in kwargs.items() if k != "endpoint"}

    def complete(self, model: str, kwargs: dict[str, Any]) -> Answer:
        if speaks_openai(model):
            return self.http.complete(model, kwargs)
        return self.other.complete(model, self._other_kwargs(model, kwargs))

    async def acomplete(self, model: str, kwargs: dict[str, Any]) -> Answer:
        if speaks_openai(model):
            return await self.http.acomplete(model, kwargs)
        return await self.other.acomplete(model, self._other_kwargs(model, kwargs))

    def close(self) -> None:
        self.http.close()

    # -- streaming (gw-stream) ----------------------------------------------------------------------
    def count_text_tokens(self, model: str, text: str) -> int:
        return self.http.count_text_tokens(model, text)

    def astream(self, model: str, kwargs: dict[str, Any]) -> AsyncIterator[bytes | dict]:
        """OpenAI-protocol streams as the provider's bytes, others as litellm's chunks (dicts)."""
        if speaks_openai(model):
            return self.http.astream(model, kwargs)
        return self.other.astream(model, self._other_kwargs(model, kwargs))


async def _drain(lines: AsyncIterator[str], within_s: float = 1.0) -> None:
    """Read what follows `data: [DONE]` (usually only the end of the chunked body): a response closed
    before its end also closes its connection, so every stream would open a new one (a TCP handshake,
    ~1 ms of CPU). A provider that goes on sending is cut after `within_s`."""
    import asyncio

    try:
        async with asyncio.timeout(within_s):
            async for _ in lines:
                pass
    except TimeoutError:
        pass


def _checked(model: str, data: bytes) -> bytes:
    """One event's chunk as it came; an error event, or a chunk that is not a JSON object, raises
    LLMError. Only a chunk that may be one of those is parsed: `"error"` with its quotes bare occurs in
    a chunk's JSON only as a key or a whole value, never inside a string (where quotes are escaped)."""
    if data[:1] == b"{" and data[-1:] == b"}" and b'"error"' not in data:
        return data
    try:
        chunk = json.loads(data)
    except ValueError:
        chunk = None
    if not isinstance(chunk, dict):
        raise LLMError(f"{model}: server: a stream chunk is not a JSON object: {data[:100]!r}", None,
                       transient=True, kind="server")
    err = chunk.get("error")
    if err:
        detail = err.get("message") if isinstance(err, dict) else err
        raise LLMError(f"{model}: server: an error in the stream: {str(detail)[:300]}", None, transient=True,
                       kind="server")
    return data
