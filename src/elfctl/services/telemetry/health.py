"""`elfctl health` component "telemetry" (listed only when telemetry is on): the collector's port
answers, and no process dropped spans in the last 24 hours (the actions trail, see drops.py)."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from elfctl.domain.clock import now
from elfctl.domain.health import Check
from elfctl.redact import redact_url
from elfctl.services.telemetry.drops import dropped_since

WINDOW = dt.timedelta(hours=24)


def telemetry_probe(settings, open_store: Callable[[], object], timeout_s: float = 2.0):
    def probe() -> Check:
        url = urlsplit(settings.endpoint)
        port = url.port or (443 if url.scheme == "https" else 80)
        problems = []
        try:
            socket.create_connection((url.hostname, port), timeout=timeout_s).close()
        except OSError as exc:
            problems.append(f"collector {redact_url(settings.endpoint)} unreachable ({exc.strerror or exc})")
        store = open_store()
        dropped, why = (0, "")
        if "platform_actions" in store.tables():
            dropped, why = dropped_since(store, now() - WINDOW)
        if dropped:
            problems.append(f"{dropped} span(s) dropped in the last 24 h ({why})")
        if problems:
            return Check("telemetry", "warn", dropped, "dropped_spans", output="; ".join(problems),
                         hint="LLM calls and deploys go on untraced meanwhile; start or fix the collector "
                              "(telemetry.endpoint / OTEL_EXPORTER_OTLP_ENDPOINT)")
        return Check("telemetry", "pass", 0, "dropped_spans",
                     output=f"exporting to {redact_url(settings.endpoint)}; no spans dropped in the last 24 h")

    return probe
