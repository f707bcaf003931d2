"""database: the store answers (round-trip latency), and what bounds it: Postgres connections in
use against max_connections; on SQLite, how long taking the write lock waits against the busy
timeout (a writer waiting that long fails with "database is locked"). A store that does not answer
is critical: every capability depends on it."""

from __future__ import annotations

import time
from collections.abc import Callable

from elfctl.errors import ElfError
from elfctl.services.resources.status import Reading, reading


def database(limits: tuple[float, float], open_store: Callable[[], object], busy_timeout_ms: int) -> list[Reading]:
    t0 = time.perf_counter()
    try:
        store = open_store()
        if store.dialect == "rest":  # no SQL over REST: the API's description of the schema is the round trip
            store.tables()
        else:
            store.query("SELECT 1 AS one")
    except ElfError as exc:
        return [Reading("database", "store", "critical", detail=f"store not answering: {exc.message}")]
    ms = (time.perf_counter() - t0) * 1000
    out = [Reading("database", "store", "healthy", detail=f"{store.display_url} answered in {ms:.1f} ms",
                   latency_ms=round(ms, 1))]
    if store.dialect == "rest":  # Supabase's REST API: the project's limits are not readable without SQL
        return out
    try:
        if store.dialect == "postgres":
            used = store.query("SELECT count(*) AS n FROM pg_stat_activity")[0]["n"]
            most = int(store.query("SELECT current_setting('max_connections') AS m")[0]["m"])
            out.append(reading("database", "connections", used / most * 100, limits,
                               f"{used} of max_connections {most} in use"))
        else:
            t1 = time.perf_counter()
            with store.transaction():  # BEGIN IMMEDIATE: waits while another process writes
                pass
            wait = (time.perf_counter() - t1) * 1000
            out.append(reading("database", "lock_wait", wait / busy_timeout_ms * 100 if busy_timeout_ms else None,
                               limits, f"write lock taken in {wait:.1f} ms (busy timeout {busy_timeout_ms} ms)"))
    except ElfError as exc:
        out.append(Reading("database", "limits", "critical", detail=f"store failed: {exc.message}"))
    return out
