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
        # selects filtered here (REST filters are equality only): a few breakers, today's few rollup rows
        rows = [r for r in store.select("breaker_state", columns="name, state, opened_at", order="name")
                if r["name"].startswith("llm:") and r["state"] != "closed" and r["name"][4:] not in covered]
        today = dt.datetime.now(dt.UTC).date().isoformat()
        unpriced = sum(int(r["unpriced"] or 0)
                       for r in store.select("daily_cost_summary", {"day": today}, columns="unpriced"))
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
