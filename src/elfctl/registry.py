"""What team code imports to find others and say it is alive:

    from elfctl import registry
    for svc in registry.find(capability="seo", status="passing"):
        print(svc["name"], svc["url"])
    registry.heartbeat("my-team")                 # or status="warn", note="queue 80% full"

Inside a deployed container it asks the gateway, with the variables `elfctl deploy` injects
(OPENAI_BASE_URL, its `/v1` dropped, and the team key in OPENAI_API_KEY): stdlib HTTP only, so it
works in a minimal image. On the operator's machine (no OPENAI_BASE_URL) it reads the project's
store directly, found from the current folder as the CLI finds it. Both ways return the same dicts.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from elfctl.errors import ElfError, InputError, OperationFailed, Unreachable

_lock = threading.Lock()
_app: Any = None


def find(capability: str | None = None, kind: str | None = None, owner: str | None = None,
         status: str | None = None) -> list[dict[str, Any]]:
    """Entries matching every filter given (status: passing, warning or critical)."""
    filters = {k: v for k, v in (("capability", capability), ("kind", kind), ("owner", owner), ("status", status))
               if v is not None}
    gateway = _gateway()
    if gateway:
        from urllib.parse import urlencode

        return _call(gateway, "GET", "/v1/registry" + (f"?{urlencode(filters)}" if filters else ""))["data"]
    from elfctl.services.registry import entries as reg

    return [reg.public(e) for e in reg.find(_store(), **filters)]


def get(name: str) -> dict[str, Any] | None:
    """One entry, or None."""
    gateway = _gateway()
    if gateway:
        from urllib.parse import quote

        try:
            return _call(gateway, "GET", f"/v1/registry/{quote(name, safe='')}")
        except OperationFailed as exc:
            if exc.code == "not_found":
                return None
            raise
    from elfctl.services.registry import entries as reg

    e = reg.get(_store(), name)
    return reg.public(e) if e else None


def heartbeat(name: str, status: str = "pass", note: str = "") -> dict[str, Any]:
    """Say `name` is alive (pass), degraded (warn) or failing (fail). Through the gateway a team may
    heartbeat only itself (403 otherwise)."""
    gateway = _gateway()
    if gateway:
        from urllib.parse import quote

        return _call(gateway, "PUT", f"/v1/registry/{quote(name, safe='')}/heartbeat", {"status": status, "note": note})
    from elfctl.services.registry import entries as reg

    e = reg.heartbeat(_store(), name, status, note)
    return {"name": e.name, "status": e.status, "note": e.note, "heartbeat_at": e.heartbeat_at}


def _gateway() -> tuple[str, str] | None:
    """(gateway root URL, team key) inside a deployed container, else None."""
    base = os.environ.get("OPENAI_BASE_URL", "").rstrip("/")
    if not base:
        return None
    key = os.environ.get("OPENAI_API_KEY", "")
    if not key:
        raise InputError("OPENAI_BASE_URL is set but OPENAI_API_KEY is not", hint="deploy injects both; set the team key")
    return base.removesuffix("/v1"), key


def _call(gateway: tuple[str, str], method: str, path: str, body: dict | None = None) -> Any:
    import urllib.error
    import urllib.request

    root, key = gateway
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(root + path, data=data, method=method,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=float(os.environ.get("ELFCTL_REGISTRY_TIMEOUT_S", "5"))) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except Exception:  # noqa: BLE001 (a body that is not the gateway's error shape)
            message = exc.reason
        code = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(exc.code, "failed")
        if exc.code == 400:
            raise InputError(f"gateway {method} {path}: {message}") from None
        raise OperationFailed(f"gateway {method} {path}: HTTP {exc.code}: {message}", code=code) from None
    except (urllib.error.URLError, OSError) as exc:
        raise Unreachable(f"gateway at {root} does not answer ({getattr(exc, 'reason', exc)})",
                          hint="is `elfctl gateway serve` running, and OPENAI_BASE_URL right?") from None


def _store():
    global _app
    with _lock:
        if _app is None:
            from elfctl.app import App
            from elfctl.output import Output

            _app = App(Output(quiet=True))
        return _app.store


__all__ = ["find", "get", "heartbeat", "ElfError"]
