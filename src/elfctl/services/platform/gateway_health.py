"""`elfctl health` component "gateway": the LLM gateway the deployed teams call.

On Docker the operator reaches it where `infra up` publishes it (gateway.host:gateway.port on this
machine): its own IETF health answer decides (pass, warn or fail as it says). Nothing answering is
`not configured` (a warning: teams on the gateway cannot call their LLM) when infra has not started
it, and a failure when its container exists. On Kubernetes this machine may not reach the Service:
the gateway's Deployment and its ready replicas decide.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from elfctl.domain.health import ORDER, Check

NAME = "gateway"
NOT_CONFIGURED_HINT = "run `elfctl infra up` (it starts the gateway), or `elfctl gateway serve`"


def health_url(host: str, port: int) -> str:
    """Where this machine asks the gateway: a wildcard bind address is reached on loopback."""
    host = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else host
    return f"http://{host}:{port}/health"


class _Hangs(Exception):
    """Something accepted the connection and did not answer in time."""


def _ask(url: str, timeout_s: float) -> tuple[int, dict | None] | str:
    """(HTTP status, its IETF JSON or None), or why nothing answered (refused, unreachable)."""
    import socket
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (an http URL we built)
            status, body = resp.status, resp.read(65536)
    except urllib.error.HTTPError as exc:  # a 503 still carries the health document
        status, body = exc.code, exc.read(65536)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise _Hangs(f"{url} accepted the connection but did not answer within {timeout_s:g}s") from None
        return str(reason)
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    return status, doc if isinstance(doc, dict) else None


def docker_probe(url: str, started: Callable[[], str | None], timeout_s: float = 2.0):
    """`started()` names what infra runs the gateway as (its container), or None."""

    def probe() -> Check:
        try:
            answer = _ask(url, timeout_s)
        except _Hangs as exc:
            where = started()
            return Check(NAME, "fail", output=str(exc),
                         hint=f"see its log: `docker logs {where.split()[-1]}`" if where else
                         "something on gateway.port accepts connections and never answers: find it (`ss -ltnp`)")
        if isinstance(answer, str):
            where = started()
            if where is None:
                return Check(NAME, "warn", output=f"not configured: infra has not started the gateway, and nothing "
                                                  f"answers at {url}; teams on it cannot call their LLM",
                             hint=NOT_CONFIGURED_HINT)
            return Check(NAME, "fail", output=f"{where} runs, but {url} does not answer ({answer})",
                         hint="see its log: `docker logs " + where.split()[-1] + "`")
        code, doc = answer
        status = doc.get("status") if doc else None
        if status not in ORDER:
            return Check(NAME, "fail", code, "http_status",
                         output=f"{url} answered HTTP {code} without an IETF health document",
                         hint="is something else listening on gateway.port?")
        problems = _problems(doc)
        out = f"{url}: {status}" + (f" ({problems})" if problems else "")
        return Check(NAME, status, code, "http_status", output=out,
                     hint=None if status == "pass" else "`elfctl gateway` logs and the checks above say why")

    return probe


def _problems(doc: dict) -> str:
    """The gateway's own checks that do not pass, as 'name: status' (its output when given)."""
    bad = []
    for name, entries in (doc.get("checks") or {}).items():
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, dict) and entry.get("status") not in (None, "pass"):
                bad.append(f"{name}: {entry.get('status')}" + (f" {entry['output']}" if entry.get("output") else ""))
    return "; ".join(bad[:3])


def kubernetes_probe(target, deployment: str):
    """The gateway's Deployment in the environment's namespace, as the team probes read theirs."""

    def probe() -> Check:
        s = target.team_status(deployment)
        if not s.exists:
            return Check(NAME, "warn", output=f"not configured: no Deployment {deployment} in {target.namespace}; "
                                              f"teams on the gateway cannot call their LLM", hint=NOT_CONFIGURED_HINT)
        return Check(NAME, s.status, s.ready, "ready_replicas",
                     output=f"Deployment {deployment}: {s.ready}/{s.desired} ready ({s.rollout})",
                     hint=None if s.status == "pass" else f"`kubectl -n {target.namespace} describe deployment "
                                                           f"{deployment}`")

    return probe
