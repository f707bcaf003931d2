"""The registry over the gateway, for code inside a team (its team key): discovery, its own
heartbeat, and every team's A2A agent card (public, as /.well-known documents are). Each answer is
computed from the store at request time, so any number of gateway processes on one store agree."""

from __future__ import annotations

from elfctl.domain import agent_card
from elfctl.errors import ElfError
from elfctl.services.gateway.errors import ApiError
from elfctl.services.gateway.routes import Request, route
from elfctl.services.registry import entries as reg

_FILTERS = ("capability", "kind", "owner", "status")


@route("GET", "/v1/registry")
def find(req: Request):
    unknown = [k for k in req.query if k not in _FILTERS]
    if unknown:
        raise ApiError(400, f"unknown filter {unknown[0]!r}: use {', '.join(_FILTERS)}", param=unknown[0],
                       code="invalid_value")
    found = reg.find(req.gateway.store, **{k: req.query[k] for k in _FILTERS if req.query.get(k)})
    return 200, {"cache-control": "no-store"}, {"object": "list", "data": [reg.public(e) for e in found]}


@route("GET", "/v1/registry/{name}")
def one(req: Request):
    e = reg.get(req.gateway.store, req.params["name"])
    if e is None:
        raise ApiError(404, f"registry: no entry {req.params['name']!r}", code="not_found")
    return 200, {"cache-control": "no-store"}, reg.public(e)


@route("PUT", "/v1/registry/{name}/heartbeat")
def heartbeat(req: Request):
    name = req.params["name"]
    if req.key.team != name:  # a team vouches only for itself
        raise ApiError(403, f"team {req.key.team!r} may heartbeat only its own entry, not {name!r}",
                       code="forbidden")
    body = req.json() if req.body.strip() else {}
    if not isinstance(body, dict) or any(k not in ("status", "note") for k in body):
        raise ApiError(400, 'the body is {"status": "pass" | "warn" | "fail", "note": "..."}', code="invalid_input")
    try:
        e = reg.heartbeat(req.gateway.store, name, str(body.get("status", "pass")), str(body.get("note", "")))
    except reg.NotRegistered as exc:
        raise ApiError(404, exc.message, code="not_found") from None
    return 200, {}, {"name": e.name, "status": e.status, "note": e.note, "heartbeat_at": e.heartbeat_at}


@route("GET", "/teams/{name}/.well-known/agent-card.json", public=True)
def card(req: Request):
    try:
        e = reg.get(req.gateway.store, req.params["name"])
    except ElfError:
        e = None  # a name that is no DNS label is simply no team
    if e is None or e.kind != "team":
        raise ApiError(404, f"no team {req.params['name']!r} in the registry", code="not_found")
    return 200, {"cache-control": "no-store"}, agent_card.team_card(e)
