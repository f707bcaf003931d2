"""GET /health: the gateway's own health as IETF health JSON (draft-inadarei-api-health-check)."""

from __future__ import annotations

from elfctl.services.gateway.routes import Request, route

_HEALTH = {"content-type": "application/health+json", "cache-control": "no-store"}


@route("GET", "/health", public=True)
def health(req: Request):
    checks: dict[str, list[dict]] = {}
    status = "pass"
    try:
        req.gateway.store.query("SELECT 1 AS ok")
        checks["store:responseTime"] = [{"status": "pass"}]
    except Exception as exc:  # noqa: BLE001 - any store failure is this check's answer
        from elfctl.redact import scrub

        checks["store:responseTime"] = [{"status": "fail", "output": scrub(str(exc))[:200]}]
        status = "fail"
    return (200 if status != "fail" else 503), _HEALTH, {"status": status, "checks": checks}
