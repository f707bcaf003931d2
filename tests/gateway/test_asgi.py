"""The server's streaming answer (the contract streaming handlers rely on), driven in-process as
uvicorn drives an ASGI app: chunks go out as the iterator yields them, and a client that goes away
mid-stream cancels the iterator where it waits, so its `finally` runs (where usage is recorded)."""

from __future__ import annotations

import asyncio
import types

import pytest

from elfctl.services.gateway import routes
from elfctl.services.gateway.asgi import Server


@pytest.fixture
def server(project):
    from elfctl import config

    made = Server(types.SimpleNamespace(config=config.load(cwd=project)))
    yield made
    made.pool.shutdown(wait=False)


def _with_route(server, handler, path="/t/stream"):
    route = routes.Route("GET", path, handler, public=True)
    server.table = routes.Table([*routes.ROUTES, route])


async def _drive(server, path, disconnect_after: int | None):
    sent, request_done = [], asyncio.Event()
    gone = asyncio.Event()

    async def receive():
        if not request_done.is_set():
            request_done.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(msg):
        sent.append(msg)
        chunks = [m for m in sent if m["type"] == "http.response.body" and m.get("body")]
        if disconnect_after is not None and len(chunks) >= disconnect_after:
            gone.set()

    scope = {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b"", "client": None}
    await asyncio.wait_for(server(scope, receive, send), 10)
    return sent


def test_a_stream_is_sent_as_it_comes(server):
    async def chunks():
        for i in range(3):
            yield f"data: {i}\n\n".encode()
        yield b"data: [DONE]\n\n"

    _with_route(server, lambda req: (200, {"content-type": "text/event-stream"}, chunks()))
    sent = asyncio.run(_drive(server, "/t/stream", None))
    assert sent[0]["status"] == 200 and (b"content-type", b"text/event-stream") in sent[0]["headers"]
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"data: 0\n\ndata: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
    assert sent[-1] == {"type": "http.response.body", "body": b""}


def test_a_client_that_leaves_cancels_the_stream_and_its_finally_runs(server):
    state = {"yielded": 0, "finally": False}

    async def chunks():
        try:
            while True:
                state["yielded"] += 1
                yield b"data: x\n\n"
                await asyncio.sleep(0.01)  # waiting on the provider's next token
        finally:
            state["finally"] = True

    _with_route(server, lambda req: (200, {}, chunks()))
    sent = asyncio.run(_drive(server, "/t/stream", disconnect_after=2))
    assert state["finally"] and state["yielded"] <= 3
    assert {"type": "http.response.body", "body": b""} not in sent  # no end sent to a client that is gone
