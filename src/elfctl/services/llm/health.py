"""`elfctl health` component "llm": open circuits (`breaker_state` rows named `llm:<model>`) and
calls recorded today with no price. Both are warnings: calls still go to the fallback models."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from elfctl.domain.health import Check


def llm_probe(open_store: Callable[[], object], covered=frozenset()):
    """`covered`: models whose circuits an `llm:<provider>` component already reports."""

    def probe() -> Check:
        store = open_store()
        if "breaker_state" not in store.tables():
            return Check("llm", "warn", output="no cost tables yet", hint="run `elfctl db migrate`")
        rows = store.query(
            "SELECT name, state, opened_at FROM breaker_state WHERE name LIKE 'llm:%' "
            "AND state <> 'closed' ORDER BY name"
        )
        rows = [r for r in rows if r["name"][4:] not in covered]
        today = dt.datetime.now(dt.UTC).date().isoformat()
        unpriced = store.query(
            "SELECT COALESCE(SUM(unpriced), 0) AS n FROM daily_cost_summary WHERE day = ?", (today,)
        )[0]["n"]
        problems = [f"circuit {r['name'][4:]} {r['state']} since {r['opened_at'] or '?'}" for r in rows]
        if unpriced:
            problems.append(f"{unpriced} call(s) today with no price (counted as $0)")
        if problems:
            return Check(
                "llm",
                "warn",
                len(rows),
                "open_circuits",
                output="; ".join(problems),
                hint="calls fall back to the next model; check the provider, or add prices and "
                "run `elfctl cost reprice`",
            )
        return Check("llm", "pass", 0, "open_circuits", output="no open circuits")

    return probe
