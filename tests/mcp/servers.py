"""Real MCP servers for the tests, written with the `mcp` SDK; run as `python servers.py MODE [PORT]`.

  stdio    tools echo and add, a resource and a prompt, over stdio
  http     the same over streamable HTTP on 127.0.0.1:PORT/mcp
  secret   stdio; refuses to start unless MCP_TEST_TOKEN is set to the value whose sha256 is argv[2]; writes
           the NAMES of the variables it was started with to the file argv[3]
  crash    stdio; dies on the initialize request, after a line on stderr
  hang     stdio; reads requests and never answers
  hanghttp a TCP port that accepts connections and never answers
  deny     HTTP that answers 401 to everything
"""

from __future__ import annotations

import os
import socket
import sys
import time


def server(name: str):
    from mcp.server.mcpserver import MCPServer

    s = MCPServer(name)

    @s.tool()
    def echo(text: str) -> str:
        """Say it back."""
        return text

    @s.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @s.resource("mem://motd")
    def motd() -> str:
        return "hello"

    @s.prompt()
    def greet(who: str) -> str:
        return f"greet {who}"

    return s


def main(mode: str, port: int = 0) -> None:
    if mode == "stdio":
        server("test-stdio").run()
    elif mode == "secret":
        import hashlib
        import json

        token = os.environ.get("MCP_TEST_TOKEN", "")
        if hashlib.sha256(token.encode()).hexdigest() != sys.argv[2]:
            print("MCP_TEST_TOKEN is not set to the expected value", file=sys.stderr)
            sys.exit(3)
        with open(sys.argv[3], "w") as f:
            json.dump(sorted(os.environ), f)
        server("test-secret").run()
    elif mode == "http":
        import uvicorn

        uvicorn.run(server("test-http").streamable_http_app(), host="127.0.0.1", port=port, log_level="error")
    elif mode == "crash":
        sys.stdin.readline()
        print("boom: cannot load the model index", file=sys.stderr, flush=True)
        os._exit(7)
    elif mode == "hang":
        for _line in sys.stdin:
            pass
        time.sleep(3600)
    elif mode == "hanghttp":
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(16)
        held = []
        while True:
            held.append(sock.accept()[0])
    elif mode == "deny":
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Deny(BaseHTTPRequestHandler):
            def do_POST(self):
                self.send_response(401)
                self.send_header("WWW-Authenticate", "Bearer")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_DELETE = do_POST

            def log_message(self, *a):
                pass

        ThreadingHTTPServer(("127.0.0.1", port), Deny).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 0)
