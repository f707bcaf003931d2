"""Read-only calls to a local Docker engine over plain HTTP on its unix socket (the standard
library's http.client over AF_UNIX), for the few reads the resource monitor and health make on
every run: `info`, list containers, inspect one.

docker-py costs about 0.2 s to import (requests, urllib3) and most of `elfctl resources`' own CPU;
these calls need none of it. Everything else (builds, pushes, runs, remote engines over tcp:// or
ssh://) stays on docker-py (adapters/docker_engine.py). Errors are returned as (status, message)
or raised as OSError; DockerEngine translates both, as it does docker-py's.
"""

from __future__ import annotations

import json
import os
import re
import socket
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_SOCKET = "/var/run/docker.sock"


def socket_path(base_url: str | None) -> str | None:
    """The unix socket a local engine listens on (`unix:///path`, or none set: the default), else
    None (tcp://, ssh://: docker-py's)."""
    host = base_url or os.environ.get("DOCKER_HOST") or ""
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://"):
        path = host[len("unix://"):]
        return path if path.startswith("/") else None
    return None


def _connection(path: str, timeout: float):
    import http.client

    class _Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            try:
                s.connect(path)
            except BaseException:
                s.close()
                raise
            self.sock = s

    return _Unix("localhost", timeout=timeout)


def get(path: str, url: str, timeout: float) -> tuple[int, Any]:
    """(status, parsed JSON body) of GET `url` on the engine at socket `path`; a non-2xx answer's
    body is Docker's `{"message": ...}`. Raises OSError (no engine, timeout, a broken answer)."""
    import http.client

    conn = _connection(path, timeout)
    try:
        conn.request("GET", url, headers={"accept": "application/json"})
        r = conn.getresponse()
        raw = r.read()
    except http.client.HTTPException as exc:  # a reply that is not HTTP: not an engine we can read
        raise ConnectionError(f"not an HTTP answer ({type(exc).__name__})") from None
    finally:
        conn.close()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = {"message": raw[:200].decode(errors="replace")}
    return r.status, body


def containers_url(labels: dict[str, str], all_: bool) -> str:
    filters = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
    return "/containers/json?" + urlencode({"all": "1" if all_ else "0", "filters": filters})


# What Docker allows as a container name (an ID matches too): anything else names no container.
_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def inspect_url(name: str) -> str | None:
    """The inspect path of container `name`, or None when no container can have that name."""
    if not _NAME.fullmatch(name):
        return None
    return f"/containers/{quote(name.lstrip('/'), safe='')}/json"
