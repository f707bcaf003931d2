"""GET /v1/providers: for the calling team's chain, which providers the gateway holds a key for.

A team cannot see provider keys (they never enter its containers), so this is how it can tell
"no provider key configured" from a provider that is down: the example team's /health turns it
into `warn`. Names and yes/no only: never a key, nor where it came from."""

from __future__ import annotations

from elfctl.services.gateway.routes import Request, route


@route("GET", "/v1/providers")
def providers(req: Request):
    from elfctl.domain.llm_providers import KEYLESS

    policy = req.gateway.policy(req.key.team)
    caller = req.gateway.caller
    provider_of = getattr(caller.client, "provider_of", None)
    out: dict[str, dict] = {}
    for model in policy.chain:
        name = (provider_of(model) if provider_of else None) or (model.split("/", 1)[0] if "/" in model else "")
        if not name:
            continue
        entry = out.setdefault(name, {"provider": name, "models": [], "key_configured": True})
        entry["models"].append(model)
        if name not in KEYLESS and caller.key_for is not None:
            entry["key_configured"] = bool(caller.key_for(name, policy.team))
    return 200, {}, {"object": "list", "data": list(out.values())}
