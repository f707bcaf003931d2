"""A local OpenAI-compatible server for tests: `POST /v1/chat/completions` (and `/v1/embeddings`,
answering the usage's prompt tokens) on 127.0.0.1.

Tests call it through real litellm with `api_base=server.url` and a model such as
`openai/gpt-4o-mini` (litellm sends `gpt-4o-mini` as the model; behaviours are keyed by that name).

    server = LLMServer().start()
    server.answer("gpt-4o-mini", prompt=12, completion=5)      # default for every model
    server.fail("gpt-4o", status=500, times=2)                  # next 2 calls fail, then answer
    server.rate_limit("gpt-4o", retry_after=1)                 # 429 + Retry-After, always
    server.stall("gpt-4o", seconds=5)                           # answer after 5 s (past a timeout)
    server.answer("*", prompt=10, completion=100, delay=0.05)   # default for models not set
    server.calls("gpt-4o")                                      # requests seen for that model
    server.answer("gpt-4o", content="a b c", chunk_delay=0.01)  # streamed: one chunk a word, 10 ms apart
    server.stream_stall("gpt-4o", after=2, seconds=5)           # streamed: 2 content chunks, then silence
    server.stream_drop("gpt-4o", after=2)                       # streamed: 2 content chunks, then cut
    server.streams                                              # what each streamed answer sent
    server.auth                                                 # Authorization header of each request
    server.ratelimit("gpt-4o", remaining_requests=3, limit_requests=100, reset_requests="20s")
                                                                # x-ratelimit-* headers on its answers
    server.reset(); server.stop()

`stream: true` answers server-sent events in OpenAI's chunk format (role chunk, a chunk per word of
the content, a finish chunk, with `stream_options.include_usage` a usage chunk, then `data: [DONE]`),
chunked so the connection is reused. `streams` records, per streamed answer, the content chunks and
text written before the client went away or the stream ended (`finished`), and whether the client
closed the connection early (`gone`), and the JSON of each event as sent (`sent`, bytes).

Pytest fixture: `llm_server` (tests/conftest.py), one per test, reset between uses.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests import loopback


class LLMServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[str, list[dict[str, Any]]] = {}  # model -> queue of one-shot behaviours
        self._default: dict[str, dict[str, Any]] = {}  # model -> lasting behaviour
        self._breaks: dict[str, dict[str, Any]] = {}  # model -> lasting stream break, over its answers
        self._ratelimits: dict[str, dict[str, str]] = {}  # model -> x-ratelimit-* headers sent with its answers
        self._calls: dict[str, int] = defaultdict(int)
        self.requests: list[dict[str, Any]] = []
        self.auth: list[str] = []  # the Authorization header of each request (key checks)
        self.headers: list[dict[str, str]] = []  # every header of each request (attribution headers)
        self.peers: set[tuple[str, int]] = set()  # client (host, port) of each request: one per connection
        self.streams: list[dict[str, Any]] = []  # per streamed answer: model, chunks, text, finished, gone
        self._httpd: ThreadingHTTPServer | None = None

    # -- control ---------------------------------------------------------------------------
    def answer(
        self,
        model: str,
        prompt: int = 10,
        completion: int = 5,
        cached: int = 0,
        reasoning: int = 0,
        content: str = "ok",
        delay: float = 0.0,
        chunk_delay: float = 0.0,
    ) -> LLMServer:
        """Answer with this usage (after `delay` seconds; streamed, `chunk_delay` between content
        chunks). model "*" sets the default for all."""
        self._set(
            model,
            {
                "status": 200,
                "usage": dict(prompt=prompt, completion=completion, cached=cached, reasoning=reasoning),
                "content": content,
                "stall": delay,
                "chunk_delay": chunk_delay,
            },
        )
        return self

    def stream_stall(self, model: str, after: int, seconds: float, times: int | None = None) -> LLMServer:
        """A streamed answer (the model's answer otherwise) goes silent for `seconds` after `after`
        content chunks, then goes on."""
        return self._set(model, {"overlay": True, "break_after": after, "break": "stall", "break_s": seconds}, times)

    def stream_drop(self, model: str, after: int, times: int | None = None) -> LLMServer:
        """A streamed answer (the model's answer otherwise) is cut, connection closed without the end of
        the chunked body, after `after` content chunks."""
        return self._set(model, {"overlay": True, "break_after": after, "break": "drop"}, times)

    def fail(self, model: str, status: int = 500, times: int | None = None) -> LLMServer:
        return self._set(model, {"status": status}, times)

    def rate_limit(self, model: str, retry_after: float = 1, times: int | None = None) -> LLMServer:
        return self._set(model, {"status": 429, "retry_after": retry_after}, times)

    def stall(self, model: str, seconds: float, times: int | None = None) -> LLMServer:
        return self._set(model, {"status": 200, "stall": seconds}, times)

    def ratelimit(self, model: str, remaining_requests: int | None = None, limit_requests: int | None = None,
                  remaining_tokens: int | None = None, limit_tokens: int | None = None,
                  reset_requests: str | None = None, reset_tokens: str | None = None) -> LLMServer:
        """Send OpenAI's x-ratelimit-* headers (those given) with every answer for `model` ("*": all
        models not set), as they are now: call again to change them."""
        given = {"limit-requests": limit_requests, "remaining-requests": remaining_requests,
                 "limit-tokens": limit_tokens, "remaining-tokens": remaining_tokens,
                 "reset-requests": reset_requests, "reset-tokens": reset_tokens}
        with self._lock:
            self._ratelimits[model] = {f"x-ratelimit-{k}": str(v) for k, v in given.items() if v is not None}
        return self

    def calls(self, model: str | None = None) -> int:
        with self._lock:
            return sum(self._calls.values()) if model is None else self._calls[model]

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self._default.clear()
            self._breaks.clear()
            self._ratelimits.clear()
            self._calls.clear()
            self.requests.clear()
            self.auth.clear()
            self.headers.clear()
            self.streams.clear()

    def _set(self, model: str, rule: dict[str, Any], times: int | None = None) -> LLMServer:
        with self._lock:
            if times is None and rule.get("overlay"):
                self._breaks[model] = rule
            elif times is None:
                self._default[model] = rule
            else:
                self._rules.setdefault(model, []).extend([rule] * times)
        return self

    def _next(self, model: str) -> dict[str, Any]:
        with self._lock:
            self._calls[model] += 1
            queue = self._rules.get(model)
            lasting = self._default.get(model) or self._default.get("*") or {"status": 200}
            rule = queue.pop(0) if queue else lasting
            if rule.get("overlay"):  # a one-off stream break on top of the model's answer
                return {**lasting, **rule}
            brk = self._breaks.get(model)
            return {**rule, **brk} if brk and rule.get("status", 200) == 200 else rule

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> LLMServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else delayed ACKs add 40 ms per call

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    server.auth.append(self.headers.get("Authorization") or "")
                    server.headers.append(dict(self.headers.items()))
                    server.peers.add(self.client_address)
                model = body.get("model", "")
                rule = server._next(model)
                with server._lock:
                    self.limit_headers = dict(server._ratelimits.get(model) or server._ratelimits.get("*") or {})
                if rule.get("stall"):
                    time.sleep(rule["stall"])
                status = rule.get("status", 200)
                if status != 200:
                    payload = {
                        "error": {
                            "message": f"test server: {status} for {model}",
                            "type": "test",
                            "code": status,
                        }
                    }
                    headers = {"Retry-After": str(rule["retry_after"])} if "retry_after" in rule else {}
                    return self._send(status, payload, headers)
                u = rule.get("usage") or dict(prompt=10, completion=5, cached=0, reasoning=0)
                if self.path.endswith("/embeddings"):  # one 3-dimension vector per input
                    items = body.get("input")
                    n = len(items) if isinstance(items, list) else 1
                    data = [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(n)]
                    return self._send(200, {"object": "list", "data": data, "model": model, "usage": {
                        "prompt_tokens": u["prompt"], "total_tokens": u["prompt"]}}, {})
                usage = {
                    "prompt_tokens": u["prompt"],
                    "completion_tokens": u["completion"],
                    "total_tokens": u["prompt"] + u["completion"],
                    "prompt_tokens_details": {"cached_tokens": u["cached"]},
                    "completion_tokens_details": {"reasoning_tokens": u["reasoning"]},
                }
                if body.get("stream"):
                    return self._stream(model, rule, usage, bool((body.get("stream_options") or {}).get("include_usage")))
                payload = {
                    "id": "chatcmpl-" + uuid.uuid4().hex,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": rule.get("content", "ok")},
                        }
                    ],
                    "usage": usage,
                }
                self._send(200, payload, {})

            def _stream(self, model: str, rule: dict, usage: dict, include_usage: bool) -> None:
                """OpenAI's chunk stream, chunked transfer encoding; a break rule stalls or cuts it."""
                base = {
                    "id": "chatcmpl-" + uuid.uuid4().hex,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "system_fingerprint": "fp_test",
                }
                extra = {"usage": None} if include_usage else {}

                def chunk(delta: dict, finish: str | None = None) -> dict:
                    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                    return {**base, "choices": [choice], **extra}

                words = re.findall(r"\s*\S+", rule.get("content", "ok")) or [""]
                record = {"model": model, "chunks": 0, "text": "", "finished": False, "gone": False, "sent": []}
                self.record = record
                with server._lock:
                    server.streams.append(record)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                    self.send_header("Transfer-Encoding", "chunked")
                    for k, v in self.limit_headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self._event(chunk({"role": "assistant", "content": "", "refusal": None}))
                    for i, word in enumerate(words):
                        if i == rule.get("break_after"):
                            if rule["break"] == "drop":
                                self.close_connection = True
                                self.wfile.flush()
                                self.connection.shutdown(socket.SHUT_RDWR)
                                return
                            time.sleep(rule["break_s"])
                        if i and rule.get("chunk_delay"):
                            time.sleep(rule["chunk_delay"])
                        self._event(chunk({"content": word}))
                        record["chunks"] += 1
                        record["text"] += word
                    self._event(chunk({}, "stop"))
                    if include_usage:
                        self._event({**base, "choices": [], "usage": usage})
                    self._write(b"data: [DONE]\n\n")
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    record["finished"] = True
                except (BrokenPipeError, ConnectionResetError):  # the client went away mid-stream
                    record["gone"] = True
                    self.close_connection = True

            def _event(self, obj: dict) -> None:
                data = json.dumps(obj, separators=(",", ":")).encode()
                self.record["sent"].append(data)  # this handler's stream (one at a time per connection)
                self._write(b"data: " + data + b"\n\n")

            def _write(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def _send(self, status: int, payload: dict, headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in {**self.limit_headers, **headers}.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

        self._httpd = loopback.serve(Handler)
        return self

    def stop(self) -> None:
        loopback.stop(self._httpd)
        self._httpd = None


if __name__ == "__main__":  # `python -m tests.llm_server`: a server for manual tries
    s = LLMServer().start()
    print(s.url, flush=True)
    threading.Event().wait()
