"""Whether telemetry is on, and where it goes: `[telemetry]` in elfctl.toml, ELFCTL_TELEMETRY_*, or the
standard OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_SERVICE_NAME (config.ENV_ALIASES) and OTEL_SDK_DISABLED.

Off unless asked for: `telemetry.enabled = true`, or an endpoint set anywhere (the standard variable
alone turns it on, as it does for any OpenTelemetry SDK). `enabled = false` or OTEL_SDK_DISABLED=true
turn it off whatever else is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from elfctl.errors import ConfigError
from elfctl.redact import redact_url

DEFAULT_ENDPOINT = "http://localhost:4318"


@dataclass(frozen=True)
class Settings:
    enabled: bool = False
    endpoint: str = DEFAULT_ENDPOINT
    service_name: str = "elfctl"
    capture_content: bool = False
    team_endpoint: str = ""


OFF = Settings()


def from_config(cfg, environ=None) -> Settings:
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return OFF
    endpoint = cfg.get("telemetry.endpoint")
    explicit = cfg.source("telemetry.enabled") != "default"
    on = cfg.get("telemetry.enabled") if explicit else bool(endpoint)
    if not on:
        return OFF
    endpoint = endpoint or DEFAULT_ENDPOINT
    team_endpoint = cfg.get("telemetry.team_endpoint")
    for key, url in (("telemetry.endpoint", endpoint), ("telemetry.team_endpoint", team_endpoint)):
        if url:
            _check_url(key, url, cfg.source(key))
    return Settings(True, endpoint, cfg.get("telemetry.service_name") or "elfctl",
                    cfg.get("telemetry.capture_content"), team_endpoint)


def _check_url(key: str, value: str, source: str) -> None:
    parts, url = urlsplit(value), redact_url(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key} {url!r} (from {source}) is not an http(s) URL",
                          hint=f"set {key} to the collector's OTLP/HTTP base URL, e.g. http://127.0.0.1:4318")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        raise ConfigError(f"{key} {url!r} (from {source}) has a bad port",
                          hint=f"set {key} to e.g. http://127.0.0.1:4318") from None


def team_env(settings: Settings, team: str, own_env: dict) -> dict[str, str]:
    """What deploy adds to a team's replicas so the OpenTelemetry SDK (or elfctl.llm) inside exports
    where the platform does, as the team. Variables the team's own `env:` sets are left to it."""
    if not settings.enabled:
        return {}
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": settings.team_endpoint or settings.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": team,
        "OTEL_RESOURCE_ATTRIBUTES": f"elfctl.team={team}",
    }
    if settings.capture_content:
        env["ELFCTL_TELEMETRY_CAPTURE_CONTENT"] = "true"
        env["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"] = "true"
    return {k: v for k, v in env.items() if k not in own_env}


def telemetry_env(cfg, spec) -> dict[str, str]:
    """deploy's one call: the OTEL_* variables a team's replicas get (none when telemetry is off)."""
    return team_env(from_config(cfg), spec.name, spec.env)
