"""`cost optimize` on a small hand-made ledger and price list: every expected figure is worked out by
hand in this file (the arithmetic is in the comments), not with the code's own SQL or constants.

The window is the 30 days before NOW (2026-02-16 .. 2026-03-18); prices are nano-USD per token.
"""

import datetime as dt
from decimal import Decimal

import pytest

from elfctl.adapters.model_catalog import ModelFacts
from elfctl.domain.budget import Budget
from elfctl.domain.pricing import Price
from elfctl.domain.usage import UsageRow
from elfctl.services.cost import budgets, ledger, optimize

NOW = dt.datetime(2026, 3, 18, 15, 0, tzinfo=dt.UTC)


def _model(name, provider, prompt, completion, cached, max_input=128_000):
    d = Decimal
    price = Price(name, d(prompt), d(completion), d(cached), d(prompt), d(completion))
    return ModelFacts(name, provider, price, max_input, 16_384)


CATALOG = {
    m.model: m
    for m in (
        _model("big", "openai", 1000, 4000, 500),
        _model("small", "openai", 100, 400, 50),
        _model("tiny", "openai", 10, 40, 5, max_input=500),  # cheapest, but only prompts up to 500 tokens
        _model("claude-big", "anthropic", 2000, 8000, 200),
        _model("claude-small", "anthropic", 500, 2000, 50),
    )
}

_n = iter(range(10_000))


def row(team, model, day, prompt=0, completion=0, cached=0, cost=0, outcome="ok", fallback=None, prompt_hash=None):
    return UsageRow(request_id=f"r{next(_n)}", ts=f"{day}T10:00:00.000+00:00", team=team, requested_model=model,
                    model=model, prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached,
                    cost_nanousd=cost, outcome=outcome, fallback_reason=fallback, prompt_hash=prompt_hash)


def ledger_rows():
    rows = [
        # marketing on big: 800 x 1000 + 200 x 500 + 500 x 4000 = 2,900,000
        row("marketing", "big", "2026-03-10", prompt=1000, cached=200, completion=500, cost=2_900_000),
        # 2000 x 1000 + 1000 x 4000 = 6,000,000
        row("marketing", "big", "2026-03-11", prompt=2000, completion=1000, cost=6_000_000),
        # a long answer (2000 > 1024 tokens): not a candidate for a smaller model; 1000 x 1000 + 2000 x 4000
        row("marketing", "big", "2026-03-12", prompt=1000, completion=2000, cost=9_000_000),
        row("marketing", "big", "2026-03-12", prompt=1000, outcome="error"),  # failed: not a candidate
        row("marketing", "big", "2026-02-10", prompt=1000, completion=100, cost=1_400_000),  # before the window
        # ops: small (100 x 1000 + 400 x 100 = 140,000; its 1000-token prompt does not fit tiny's 500)
        # and tiny (10 x 400 + 40 x 100 = 8,000; nothing cheaper)
        row("ops", "small", "2026-03-12", prompt=1000, completion=100, cost=140_000),
        row("ops", "tiny", "2026-03-12", prompt=400, completion=100, cost=8_000),
        # support: claude-big 2000 x 1000 + 8000 x 100 = 2,800,000; claude-small 500 x 100 + 2000 x 10 = 70,000
        row("support", "claude-big", "2026-03-13", prompt=1000, completion=100, cost=2_800_000),
        row("support", "claude-small", "2026-03-13", prompt=100, completion=10, cost=70_000),
    ]
    # sales, on a model the price list does not know: prompt "a" sent 3 times, "b" twice (+1 failure),
    # "c" once, one call without a hash, and an "a" before the window.
    for cost, h, outcome in ((300, "a", "ok"), (300, "a", "ok"), (400, "a", "ok"), (500, "b", "ok"),
                             (500, "b", "ok"), (0, "b", "error"), (250, "c", "ok"), (100, None, "ok")):
        rows.append(row("sales", "local/llama", "2026-03-14", cost=cost, outcome=outcome, prompt_hash=h))
    rows.append(row("sales", "local/llama", "2026-02-01", cost=300, prompt_hash="a"))
    # research, free models, for the reliability thresholds (at least 20 calls, 5% errors, 10% fallbacks)
    for model, calls, errors, fallbacks in (("x/flaky", 20, 1, 0), ("x/fallbacky", 20, 0, 2),
                                             ("x/steady", 20, 0, 1), ("x/rare", 19, 19, 0)):
        for i in range(calls):
            rows.append(row("research", model, "2026-03-15", outcome="error" if i < errors else "ok",
                            fallback="rate_limit" if i < fallbacks else None))
    return rows


@pytest.fixture
def store(store_url, open_store, project):
    from elfctl import config
    from elfctl.bootstrap import migrations_dir
    from elfctl.services.platform.migrate import migrate

    s = open_store(store_url)
    migrate(s, migrations_dir(config.load(cwd=project)))
    ledger.record(s, ledger_rows())
    for team, monthly in (("marketing", 10_000_000), ("ops", 1_000_000_000), ("support", 8_610_000),
                          ("idle", 5_000_000_000)):
        budgets.set_budget(s, Budget(team, monthly_nanousd=monthly))
    return s


def test_every_recommendation_and_its_money(store):
    recs = optimize.optimize(store, CATALOG, now=NOW)
    got = [(r.kind, r.team, r.savings_nanousd, r.monthly_savings_nanousd) for r in recs.items]
    assert got == [
        # marketing's two short, successful big calls on small:
        # (3000 - 200) x 100 + 200 x 50 + 1500 x 400 = 890,000 instead of 8,900,000
        ("cheaper_model", "marketing", 8_010_000, 8_010_000),
        # support's claude-big call on claude-small: 500 x 1000 + 2000 x 100 = 700,000 instead of 2,800,000
        ("cheaper_model", "support", 2_100_000, 2_100_000),
        # a cache pays every repeat: "a" 1000 x 2/3 = 666 (rounded down), "b" 1000 x 1/2 = 500
        ("cache_repeats", "sales", 1166, 1166),
        ("budget_high", "ops", 0, 0),  # $1 against 140,000 + 8,000 = 148,000: more than 3x
        ("budget_low", "marketing", 0, 0),  # 2.9M + 6M + 9M + 0 = 17,900,000 spent against 10,000,000
        ("no_budget", "sales", 0, 0),  # 300+300+400+500+500+0+250+100 = 2,350 spent, no budget
        ("unreliable_model", None, 0, 0),  # x/fallbacky: 2 of 20 fell back = 10%
        ("unreliable_model", None, 0, 0),  # x/flaky: 1 of 20 failed = 5%
    ]
    # support: 2,800,000 + 70,000 = 2,870,000 x 3 = 8,610,000, its budget: exactly 3x is not "far above"
    assert recs.total_monthly_savings_nanousd == 8_010_000 + 2_100_000 + 1166
    assert (recs.since, recs.until) == ("2026-02-16", "2026-03-18")

    mkt = recs.items[0].evidence
    assert (mkt["model"], mkt["cheaper_model"], mkt["calls"]) == ("big", "small", 2)
    assert (mkt["cost_nanousd"], mkt["cost_on_cheaper_nanousd"]) == (8_900_000, 890_000)
    assert (mkt["prompt_tokens"], mkt["completion_tokens"]) == (3000, 1500)
    assert mkt["text"] == "2 calls cost $0.01; on small they would cost $0.00"
    sup = recs.items[1].evidence
    assert (sup["model"], sup["cheaper_model"]) == ("claude-big", "claude-small")  # never an openai model
    assert recs.items[2].evidence["distinct_prompts"] == 2 and recs.items[2].evidence["repeated_calls"] == 3
    assert recs.items[4].evidence["spend_30d_nanousd"] == 17_900_000
    assert recs.items[5].evidence["spend_30d_nanousd"] == 2_350
    assert [(r.evidence["model"], r.evidence["errors"], r.evidence["fallbacks"], r.evidence["calls"])
            for r in recs.items[6:]] == [("x/fallbacky", 0, 2, 20), ("x/flaky", 1, 0, 20)]
    for r in recs.items:
        assert r.evidence.get("text"), r  # every recommendation states its evidence


def test_one_team(store):
    recs = optimize.optimize(store, CATALOG, team="sales", now=NOW)
    assert [(r.kind, r.team, r.savings_nanousd) for r in recs.items] == [
        ("cache_repeats", "sales", 1166),
        ("no_budget", "sales", 0),
    ]


def test_a_later_window_sees_only_its_own_calls(store):
    # 30 days before 2026-04-12 is 2026-03-13: marketing's and ops' calls (03-10 .. 03-12) fall out,
    # so their budgets see no spend and say nothing; support, sales and research stay as they were.
    recs = optimize.optimize(store, CATALOG, now=dt.datetime(2026, 4, 12, 12, 0, tzinfo=dt.UTC))
    assert [(r.kind, r.team, r.savings_nanousd) for r in recs.items] == [
        ("cheaper_model", "support", 2_100_000),
        ("cache_repeats", "sales", 1166),
        ("no_budget", "sales", 0),
        ("unreliable_model", None, 0),
        ("unreliable_model", None, 0),
    ]
