"""The gateway's HTTP client to OpenAI-protocol providers (adapters/openai_http.py) on the wire: calls
reuse keep-alive connections (sync calls through the http.client pool, streams through the asyncio
pool once read to their end, whatever the body's framing), a connection the provider closed while idle
is not used again, and a provider that hangs, refuses the connection or answers something that is not
HTTP is a transient `timeout` / `connection` error. The provider here is a
raw socket server that counts the connections it accepts."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest

ANSWER = {"id": "c1", "object": "chat.completion", "model": "gpt-4o-mini",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}
KW = {"messages": [{"role": "user", "content": "hello"}], "timeout": 5.0}


class Provider:
    """Answers each request on a connection; `close_after_answer`: closes the connection after each
    answer without saying so (as a provider's idle timeout does); `hang`: reads and never answers."""

    def __init__(self, close_after_answer: bool = False, hang: bool = False, framing: str = "chunked"):
        """`framing` of a streamed answer's body: chunked, length (content-length), close (until the
        connection closes), or junk (not HTTP at all)."""
        self.close_after_answer, self.hang, self.framing = close_after_answer, hang, framing
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.connections = 0
        self.requests = 0
        self.hung_up = False
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        with conn:
            while True:
                head = []
                while (line := f.readline()) not in (b"\r\n", b""):
                    head.append(line.decode("latin-1").strip())
                if not head:
                    return
                length = next((int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length")), 0)
                body = json.loads(f.read(length))
                self.requests += 1
                if self.hang:
                    self._stop.wait(30)
                    return
                if body.get("stream"):
                    events = [{"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                               "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]},
                              {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [],
                               "usage": ANSWER["usage"]}]
                    payload = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
                    payload += b"data: [DONE]\n\n"
                    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    if self.framing == "endless":  # one line that does not end, in 1 MiB chunks (64 at most)
                        conn.sendall(head + b"transfer-encoding: chunked\r\n\r\n")
                        piece = b"%x\r\n%s\r\n" % (1 << 20, b"x" * (1 << 20))
                        try:
                            for _ in range(64):
                                conn.sendall(piece)
                        except OSError:  # the client hung up
                            self.hung_up = True
                        return
                    if self.framing == "junk":
                        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                        return
                    if self.framing == "close":
                        conn.sendall(head + b"\r\n" + payload)
                        return
                    if self.framing == "length":
                        conn.sendall(head + b"content-length: %d\r\n\r\n" % len(payload) + payload)
                    else:  # each event in its own chunk, as providers flush them
                        parts = [b"data: " + p for p in payload.split(b"data: ")[1:]]
                        chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
                        conn.sendall(head + b"transfer-encoding: chunked\r\n\r\n" + chunks)
                else:
                    out = json.dumps(ANSWER).encode()
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                                 % (len(out), out))
                if self.close_after_answer:
                    return

    def stop(self) -> None:
        self._stop.set()
        self.sock.close()


@pytest.fixture
def provider():
    made: list[Provider] = []

    def make(**kw) -> Provider:
        made.append(Provider(**kw))
        return made[-1]

    yield make
    for p in made:
        p.stop()


def test_sync_calls_reuse_one_connection(provider):
    from elfctl.adapters import openai_http

    p = provider()
    client = openai_http.Client(p.url)
    answers = [client.complete("gpt-4o-mini", KW) for _ in range(20)]
    assert [a.prompt for a in answers] == [7] * 20 and answers[0].response.body == json.dumps(ANSWER).encode()
    assert p.requests == 20 and p.connections == 1
    client.close()


def test_connection_closed_by_the_provider_while_idle_is_not_reused(provider):
    from elfctl.adapters import openai_http

    p = provider(close_after_answer=True)
    client = openai_http.Client(p.url)
    for _ in range(5):
        assert client.complete("gpt-4o-mini", KW).completion == 2
        deadline = time.monotonic() + 5  # until the provider's FIN has arrived: what the pool must notice
        while not _peer_closed(client) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert p.requests == 5 and p.connections == 5


def _peer_closed(client) -> bool:
    import select

    idle = client._sync._idle  # noqa: SLF001 - the test waits for the FIN, not for a timer
    return all(select.select([c.sock], [], [], 0)[0] for c in idle)


def test_hung_provider_is_a_timeout_and_refused_connection_a_connection_error(provider):
    from elfctl.adapters import openai_http
    from elfctl.adapters.litellm_client import LLMError

    p = provider(hang=True)
    with pytest.raises(LLMError) as hung:
        openai_http.Client(p.url).complete("gpt-4o-mini", {**KW, "timeout": 0.5})
    assert hung.value.kind == "timeout" and hung.value.transient and "timeout after 0.5s" in str(hung.value)
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    with pytest.raises(LLMError) as refused:
        openai_http.Client(f"http://127.0.0.1:{port}/v1").complete("gpt-4o-mini", KW)
    assert refused.value.kind == "connection" and refused.value.transient


def test_async_calls_reuse_one_connection_of_the_loops_pool(provider):
    """Non-streamed async calls (the gateway's chat completions and embeddings) share the streams'
    asyncio pool: one connection for 20 sequential calls, the provider's bytes as the answer's body."""
    from elfctl.adapters import openai_http

    p = provider()
    client = openai_http.Client(p.url)

    async def calls():
        return [await client.acomplete("gpt-4o-mini", KW) for _ in range(20)]

    answers = asyncio.run(calls())
    assert [a.completion for a in answers] == [2] * 20 and answers[0].response.body == json.dumps(ANSWER).encode()
    assert p.requests == 20 and p.connections == 1


def test_async_call_to_a_hung_provider_is_a_timeout_and_its_connection_is_not_reused(provider):
    from elfctl.adapters import openai_http
    from elfctl.adapters.litellm_client import LLMError

    p = provider(hang=True)
    client = openai_http.Client(p.url)

    async def call():
        t0 = time.monotonic()
        with pytest.raises(LLMError) as hung:
            await client.acomplete("gpt-4o-mini", {**KW, "timeout": 0.5})
        return hung.value, time.monotonic() - t0, list(client._apools.values())  # noqa: SLF001

    err, took, pools = asyncio.run(call())
    assert err.kind == "timeout" and err.transient and "timeout after 0.5s" in str(err)
    assert took < 5 and pools and not pools[0]._idle  # noqa: SLF001 - a half-read connection is never reused


def test_async_call_cut_mid_answer_is_a_transient_connection_error(provider):
    """A provider that closes the connection inside the answer's body (content-length not met)."""
    from elfctl.adapters import openai_http
    from elfctl.adapters.litellm_client import LLMError

    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"id\":")

    threading.Thread(target=serve, daemon=True).start()
    client = openai_http.Client(f"http://127.0.0.1:{srv.getsockname()[1]}/v1")
    with pytest.raises(LLMError) as cut:
        asyncio.run(client.acomplete("gpt-4o-mini", KW))
    srv.close()
    assert cut.value.kind == "connection" and cut.value.transient and "mid-answer" in str(cut.value)


def test_streams_read_to_their_end_reuse_one_connection(provider):
    from elfctl.adapters import openai_http

    p = provider()
    client = openai_http.Client(p.url)

    async def streams() -> list[list[dict]]:
        out = []
        for _ in range(5):
            out.append([json.loads(c) async for c in client.astream("gpt-4o-mini", {**KW, "stream": True})])
        return out

    got = asyncio.run(streams())
    assert [[c["choices"][0]["delta"]["content"] for c in s if c["choices"]] for s in got] == [["hi"]] * 5
    assert p.requests == 5 and p.connections == 1


def _streams(client, n: int = 3, between=None) -> list[list[dict]]:
    async def run() -> list[list[dict]]:
        out = []
        for _ in range(n):
            out.append([json.loads(c) async for c in client.astream("gpt-4o-mini", {**KW, "stream": True})])
            if between:
                await between()
        return out

    return asyncio.run(run())


@pytest.mark.parametrize(("framing", "connections"), [("length", 1), ("close", 3)])
def test_streams_sized_or_closed_by_the_provider_read_the_same(provider, framing, connections):
    """A body with a content-length is read to its end and its connection reused; one that lasts until
    the provider closes it is read to the close, and the next stream opens a new connection."""
    from elfctl.adapters import openai_http

    p = provider(framing=framing)
    got = _streams(openai_http.Client(p.url))
    assert [[c["choices"][0]["delta"]["content"] for c in s if c["choices"]] for s in got] == [["hi"]] * 3
    assert [s[-1]["usage"]["completion_tokens"] for s in got] == [2] * 3
    assert p.requests == 3 and p.connections == connections


def test_stream_connection_closed_by_the_provider_while_idle_is_not_reused(provider):
    from elfctl.adapters import openai_http

    p = provider(close_after_answer=True)

    async def fin_arrives():  # the provider's FIN reaches the idle connection (what the pool must notice)
        await asyncio.sleep(0.2)

    got = _streams(openai_http.Client(p.url), 4, fin_arrives)
    assert [len(s) for s in got] == [2] * 4
    assert p.requests == 4 and p.connections == 4


def test_an_endless_stream_line_is_cut_at_16_mib_and_the_connection_closed(provider):
    from elfctl.adapters import openai_http
    from elfctl.adapters.litellm_client import LLMError

    p = provider(framing="endless")
    with pytest.raises(LLMError) as bad:
        _streams(openai_http.Client(p.url), 1)
    assert bad.value.kind == "connection" and "over 16 MiB" in str(bad.value)
    deadline = time.monotonic() + 10
    while not p.hung_up and time.monotonic() < deadline:
        time.sleep(0.02)
    assert p.hung_up


def test_a_stream_answer_that_is_not_http_is_a_transient_connection_error(provider):
    from elfctl.adapters import openai_http
    from elfctl.adapters.litellm_client import LLMError

    p = provider(framing="junk")
    with pytest.raises(LLMError) as bad:
        _streams(openai_http.Client(p.url), 1)
    assert bad.value.kind == "connection" and bad.value.transient and "SSH-2.0" in str(bad.value)
