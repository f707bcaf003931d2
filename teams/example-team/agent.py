"""The example team's agent: asks its LLM through the platform's gateway and answers.

    GET  /health  IETF health JSON: pass when the gateway holds a provider key for the team's model,
                  warn when it does not (or the gateway cannot be asked), never fail for that.
    POST /ask     {"question": "..."} -> {"answer": "...", "model": "..."}

It reads only what `elfctl deploy` injects: OPENAI_BASE_URL (the gateway) and OPENAI_API_KEY (this
revision's team key). Any OpenAI-compatible client would do; this one is urllib, so the image needs
nothing but Python. Provider keys never reach this container: the gateway holds them."""

import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("PORT", "8080"))
MODEL = os.environ.get("AGENT_MODEL", "gpt-4o-mini")
AGENT = os.environ.get("AGENT_NAME", "answerer")
TIMEOUT_S = float(os.environ.get("AGENT_TIMEOUT_S", "30"))
NO_KEY = "no provider key configured"

_status = {"at": 0.0, "value": None}
_lock = threading.Lock()


def _gateway(path, body=None, timeout=TIMEOUT_S):
    """(status, JSON) of one gateway request; raises OSError when it cannot be reached."""
    base = os.environ.get("OPENAI_BASE_URL", "").rstrip("/")
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(),
                                 method="GET" if body is None else "POST")
    req.add_header("Authorization", "Bearer " + os.environ.get("OPENAI_API_KEY", ""))
    req.add_header("Content-Type", "application/json")
    req.add_header("X-Elfctl-Agent", AGENT)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}


def readiness():
    """(status, output): whether a question can be answered now. Asked at most once a second."""
    with _lock:
        if time.monotonic() - _status["at"] < 1.0 and _status["value"]:
            return _status["value"]
    if not os.environ.get("OPENAI_BASE_URL"):
        value = ("warn", "no gateway configured (OPENAI_BASE_URL is not set): deploy with the gateway on")
    else:
        try:
            code, doc = _gateway("/providers", timeout=2)
            if code != 200:
                value = ("warn", f"the gateway answered {code}: {_message(doc)}")
            else:
                missing = [p["provider"] for p in doc.get("data", []) if not p.get("key_configured")]
                value = (("warn", f"{NO_KEY} for {', '.join(missing)} (the gateway holds provider keys: "
                                  f"`elfctl creds set {missing[0].upper()}_API_KEY`, then `elfctl infra up`)")
                         if missing else ("pass", f"gateway ready for {MODEL}"))
        except OSError as exc:
            value = ("warn", f"the gateway cannot be reached: {exc}")
    with _lock:
        _status.update(at=time.monotonic(), value=value)
    return value


def _message(doc):
    err = doc.get("error") if isinstance(doc, dict) else None
    return (err or {}).get("message", "") if isinstance(err, dict) else str(doc)[:200]


def ask(question):
    """(HTTP status, answer document)."""
    status, output = readiness()
    if status != "pass" and (NO_KEY in output or "OPENAI_BASE_URL" in output):
        return 503, {"error": output}
    try:
        code, doc = _gateway("/chat/completions", {
            "model": MODEL, "max_tokens": 200,
            "messages": [{"role": "system", "content": "You are a concise assistant."},
                         {"role": "user", "content": question}]})
    except OSError as exc:
        return 502, {"error": f"the gateway cannot be reached: {exc}"}
    if code != 200:
        return (503 if code in (429, 503) else 502), {"error": f"the gateway answered {code}: {_message(doc)}"}
    choice = (doc.get("choices") or [{}])[0]
    return 200, {"answer": (choice.get("message") or {}).get("content", ""), "model": doc.get("model", MODEL),
                 "usage": doc.get("usage", {})}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code, doc, ctype="application/json"):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            status, output = readiness()
            return self._send(200, {"status": status, "output": output}, "application/health+json")
        if self.path == "/":
            return self._send(200, {"team": "example-team", "ask": "POST /ask {\"question\": \"...\"}"})
        self._send(404, {"error": f"no such path {self.path}"})

    def do_POST(self):
        if self.path != "/ask":
            return self._send(404, {"error": f"no such path {self.path}"})
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > 64 * 1024:
                return self._send(413, {"error": "the question is over 64 KiB"})
            doc = json.loads(self.rfile.read(length) or b"{}")
            question = doc.get("question") if isinstance(doc, dict) else None
        except (ValueError, UnicodeDecodeError):
            return self._send(400, {"error": "the body is not JSON: send {\"question\": \"...\"}"})
        if not isinstance(question, str) or not question.strip():
            return self._send(400, {"error": "field 'question' (a non-empty string) is missing"})
        self._send(*ask(question))

    def log_message(self, fmt, *args):
        sys.stderr.write(f"{self.address_string()} {fmt % args}\n")


if __name__ == "__main__":
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True
    print(f"example-team agent on :{PORT}, model {MODEL}, gateway {os.environ.get('OPENAI_BASE_URL') or '(none)'}",
          flush=True)
    server.serve_forever()
