"""Realistic LLM usage history for tests and benchmarks: several teams, weekly seasonality, trends,
spikes, errors, fallbacks and repeated prompts.

It writes what the ledger (issue 4) writes: `api_usage` rows and the `daily_cost_summary` rollup,
consistent to the nano-dollar (each summary row is the exact sum of its usage rows). To stay fast
at 10 million rows, each (team, model) gets a fixed table of call "shapes" (tokens, cost, outcome)
with prefix sums: a day's summary row is O(1) and its usage rows are slices of that table. Bulk
loading uses executemany in big transactions with synchronous=OFF on SQLite and COPY on Postgres.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from elfctl.domain.usage import COUNTERS

# model -> (provider, nano-USD per prompt token, per completion token, per cached token);
# the same figures as litellm's price map, so `cost optimize` prices them alike.
MODELS = {
    "gpt-4o": ("openai", 2500, 10000, 1250),
    "gpt-4o-mini": ("openai", 150, 600, 75),
    "claude-sonnet-4-5": ("anthropic", 3000, 15000, 300),
    "claude-haiku-4-5": ("anthropic", 1000, 5000, 100),
}
SHAPES = 512  # call shapes per (team, model)
USAGE_COLUMNS = (
    "request_id",
    "ts",
    "day",
    "team",
    "agent",
    "requested_model",
    "model",
    "provider",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost_nanousd",
    "priced",
    "outcome",
    "fallback_reason",
    "prompt_hash",
)
SUMMARY_COLUMNS = ("day", "team", "model", *COUNTERS)


@dataclass
class TeamProfile:
    name: str
    daily_usd: float  # weekday spend at the start of the history
    weekend: float = 0.35  # weekend spend relative to weekdays
    trend: float = 0.0  # growth per day (0.01 = +1 %/day, compounding)
    noise: float = 0.08  # relative day-to-day noise (log-normal sigma)
    spike_prob: float = 0.0  # chance that a day spikes (x2..x4)
    models: tuple = (("gpt-4o", 0.7), ("gpt-4o-mini", 0.3))
    error_rate: float = 0.01
    fallback_rate: float = 0.02
    repeat_rate: float = 0.05  # share of calls repeating an identical earlier prompt
    daily_budget_usd: float | None = None
    monthly_budget_usd: float | None = None


def default_teams(n: int = 6) -> list[TeamProfile]:
    base = [
        TeamProfile("marketing", 40.0, trend=0.004, daily_budget_usd=60, monthly_budget_usd=1200),
        TeamProfile(
            "support",
            25.0,
            weekend=0.6,
            noise=0.06,
            models=(("claude-sonnet-4-5", 0.6), ("claude-haiku-4-5", 0.4)),
            daily_budget_usd=40,
            monthly_budget_usd=900,
        ),
        TeamProfile(
            "research",
            60.0,
            weekend=0.2,
            trend=0.01,
            spike_prob=0.05,
            error_rate=0.08,
            daily_budget_usd=90,
            monthly_budget_usd=1500,
        ),
        TeamProfile(
            "sales", 10.0, trend=-0.003, repeat_rate=0.3, daily_budget_usd=50, monthly_budget_usd=3000
        ),
        TeamProfile("ops", 5.0, weekend=0.9, fallback_rate=0.15, models=(("gpt-4o-mini", 1.0),)),
        TeamProfile(
            "legal",
            15.0,
            weekend=0.1,
            models=(("claude-sonnet-4-5", 1.0),),
            daily_budget_usd=25,
            monthly_budget_usd=400,
        ),
    ]
    out = base[:n]
    rng = random.Random(7)
    while len(out) < n:
        i = len(out)
        out.append(
            TeamProfile(
                f"team-{i:02d}",
                rng.uniform(3, 50),
                weekend=rng.uniform(0.1, 0.9),
                trend=rng.uniform(-0.004, 0.01),
                spike_prob=rng.choice([0, 0.03]),
                models=rng.choice(base).models,
                daily_budget_usd=rng.choice([None, 80.0]),
                monthly_budget_usd=rng.choice([None, 1500.0]),
            )
        )
    return out


def spend_series(team: TeamProfile, start: dt.date, days: int, seed: int = 0) -> list[float]:
    """The team's true daily spend in USD (before rounding into calls)."""
    rng = random.Random(f"{seed}:{team.name}")
    out = []
    for i in range(days):
        day = start + dt.timedelta(days=i)
        level = team.daily_usd * (1 + team.trend) ** i
        if day.weekday() >= 5:
            level *= team.weekend
        level *= math.exp(rng.gauss(0, team.noise))
        if team.spike_prob and rng.random() < team.spike_prob:
            level *= rng.uniform(2, 4)
        out.append(level)
    return out


@dataclass
class _Shapes:
    """SHAPES call shapes of one (team, model) with prefix sums, doubled for wrap-around slices."""

    rows: list[tuple]  # (agent, requested_model, prompt, completion, cached, cost, outcome, fallback, hash)
    prefix: list[tuple] = field(default_factory=list)  # running (calls, err, fb, p, c, cached, cost)

    @property
    def mean_cost(self) -> float:
        return self.prefix[SHAPES][6] / SHAPES

    def sums(self, offset: int, n: int) -> tuple:
        """Sums of n consecutive shapes starting at offset (wrapping round)."""
        full, rest = divmod(n, SHAPES)
        total = self.prefix[SHAPES]
        a, b = self.prefix[offset], self.prefix[offset + rest]
        return tuple(full * t + (y - x) for t, x, y in zip(total, a, b, strict=True))


def _shapes(team: TeamProfile, model: str, seed: int) -> _Shapes:
    rng = random.Random(f"{seed}:{team.name}:{model}")
    provider, p_in, p_out, p_cached = MODELS[model]
    others = [m for m, _ in team.models if m != model] or [m for m in MODELS if m != model][:1]
    rows = []
    for k in range(SHAPES):
        agent = f"{team.name}-agent-{k % 3}"
        prompt = int(rng.lognormvariate(math.log(1200), 0.8))
        if rng.random() < 0.03:
            prompt = rng.randint(20000, 90000)  # a few long-context calls
        completion = int(rng.lognormvariate(math.log(250), 0.7))
        cached = prompt // 2 if rng.random() < 0.2 else 0
        outcome, fallback, requested = "ok", None, model
        if rng.random() < team.error_rate:
            outcome, completion, cached = rng.choice(["timeout", "rate_limited", "server_error"]), 0, 0
        elif rng.random() < team.fallback_rate:
            requested, fallback = others[0], rng.choice(["rate_limited", "breaker_open", "budget_downgrade"])
        cost = (prompt - cached) * p_in + cached * p_cached + completion * p_out
        if outcome != "ok":
            cost = 0
        repeat = f"rep-{team.name}-{k % 7}" if rng.random() < team.repeat_rate and outcome == "ok" else None
        rows.append((agent, requested, prompt, completion, cached, cost, outcome, fallback, repeat))
    doubled = rows + rows
    prefix = [(0, 0, 0, 0, 0, 0, 0)]
    for r in doubled:
        p = prefix[-1]
        prefix.append(
            (
                p[0] + 1,
                p[1] + (r[6] != "ok"),
                p[2] + (r[7] is not None),
                p[3] + r[2],
                p[4] + r[3],
                p[5] + r[4],
                p[6] + r[5],
            )
        )
    return _Shapes(rows, prefix)


@dataclass
class Plan:
    """What to generate: the summary rows and, per summary row, where its usage rows come from."""

    teams: list[TeamProfile]
    start: dt.date
    days: int
    now: dt.datetime  # the last day is generated up to this time only
    seed: int
    scale: float = 1.0  # calls (and so spend) relative to the profiles' natural level
    groups: list[tuple] = field(default_factory=list)  # (day, team, model, calls, offset)
    shapes: dict = field(default_factory=dict)

    @property
    def calls(self) -> int:
        return sum(g[3] for g in self.groups)

    def summary_rows(self) -> list[tuple]:
        out = []
        for day, team, model, n, offset in self.groups:
            calls, err, fb, p, c, cached, cost = self.shapes[team, model].sums(offset, n)
            out.append((day, team, model, calls, err, fb, 0, p, c, cached, cost))
        return out

    def usage_rows(self) -> Iterator[tuple]:
        hms = [f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000+00:00" for s in range(86400)]
        last_day = self.now.date().isoformat()
        elapsed = self.now.hour * 3600 + self.now.minute * 60 + self.now.second
        rid = 0
        prefix = f"gen{self.seed}-"
        for day, team, model, n, offset in self.groups:
            rows = self.shapes[team, model].rows
            provider = MODELS[model][0]
            span = elapsed if day == last_day else 86400
            for i in range(n):
                agent, req, p, c, cached, cost, outcome, fb, rep = rows[(offset + i) % SHAPES]
                rid += 1
                key = f"{prefix}{rid:010d}"
                yield (
                    key,
                    day + hms[(i * span) // n],
                    day,
                    team,
                    agent,
                    req,
                    model,
                    provider,
                    p,
                    c,
                    cached,
                    cost,
                    1,
                    outcome,
                    fb,
                    rep or key,
                )


def make_plan(
    teams: list[TeamProfile] | None = None,
    days: int = 120,
    now: dt.datetime | None = None,
    seed: int = 1,
    rows: int | None = None,
) -> Plan:
    """History of `days` days ending at `now` (UTC). With `rows`, call counts are scaled so the plan
    holds about that many usage rows (for benchmarks); spend scales with them."""
    teams = teams or default_teams()
    now = now or dt.datetime.now(dt.UTC)
    start = now.date() - dt.timedelta(days=days - 1)
    plan = Plan(teams, start, days, now, seed)
    rng = random.Random(seed)
    today_fraction = (now.hour * 3600 + now.minute * 60 + now.second) / 86400
    for team in teams:
        for model, _ in team.models:
            plan.shapes[team.name, model] = _shapes(team, model, seed)
    raw = []
    for team in teams:
        series = spend_series(team, start, days, seed)
        for i, usd in enumerate(series):
            day = (start + dt.timedelta(days=i)).isoformat()
            if i == days - 1:
                usd *= today_fraction
            for model, share in team.models:
                mean = plan.shapes[team.name, model].mean_cost
                raw.append((day, team.name, model, usd * share * 1e9 / mean))
    scale = plan.scale = rows / max(1.0, sum(r[3] for r in raw)) if rows else 1.0
    plan.groups = [(d, t, m, int(round(c * scale)), rng.randrange(SHAPES)) for d, t, m, c in raw]
    plan.groups = [g for g in plan.groups if g[3] > 0]
    return plan


# --- writing --------------------------------------------------------------------------------------


def write_budgets(store, plan: Plan, soft_ratio: float = 0.8) -> None:
    """The profiles' budgets, scaled like the plan's spend (so ratios stay realistic)."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    rows = [
        (
            t.name,
            _nano(t.daily_budget_usd, plan.scale),
            _nano(t.monthly_budget_usd, plan.scale),
            soft_ratio,
            now,
        )
        for t in plan.teams
        if t.daily_budget_usd or t.monthly_budget_usd
    ]
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO budgets (team, daily_nanousd, monthly_nanousd, soft_ratio, updated_at) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )


def _nano(usd: float | None, scale: float = 1.0) -> int | None:
    return None if usd is None else int(round(usd * scale * 1e9))


def write(store, plan: Plan, usage: bool = True, batch: int = 200_000, progress=None) -> int:
    """Write the plan's summary rows and (with `usage`) its usage rows. Returns usage rows written."""
    summary = plan.summary_rows()
    cols = ", ".join(SUMMARY_COLUMNS)
    with store.transaction() as tx:
        tx.executemany(
            f"INSERT INTO daily_cost_summary ({cols}) VALUES ({', '.join('?' * len(SUMMARY_COLUMNS))})",
            summary,
        )
    if not usage:
        return 0
    if store.dialect == "postgres":
        return _copy_postgres(store, plan, progress)
    return _insert_sqlite(store, plan, batch, progress)


def _insert_sqlite(store, plan: Plan, batch: int, progress) -> int:
    import itertools

    sql = f"INSERT INTO api_usage ({', '.join(USAGE_COLUMNS)}) VALUES ({', '.join('?' * len(USAGE_COLUMNS))})"
    store.execute("PRAGMA synchronous=OFF")  # generator only: a crash means regenerating, not data loss
    rows = plan.usage_rows()
    written = 0
    try:
        while chunk := list(itertools.islice(rows, batch)):
            with store.transaction() as tx:
                tx.executemany(sql, chunk)
            written += len(chunk)
            if progress:
                progress(written)
    finally:
        store.execute("PRAGMA synchronous=NORMAL")
    return written


def _copy_postgres(store, plan: Plan, progress) -> int:
    # COPY is not part of the Store port; the generator reaches the adapter's psycopg connection.
    conn = store._conn
    written = 0
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(f"COPY api_usage ({', '.join(USAGE_COLUMNS)}) FROM STDIN") as copy:
            for row in plan.usage_rows():
                copy.write_row(row)
                written += 1
                if progress and written % 500_000 == 0:
                    progress(written)
    return written


def open_breaker(store, model: str, state: str = "open", when: str | None = None) -> None:
    now = when or dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    store.execute(
        "INSERT INTO breaker_state (name, state, fail_counter, opened_at, updated_at) VALUES (?, ?, 5, ?, ?)",
        (f"llm:{model}", state, now, now),
    )


def populate(
    store,
    days: int = 70,
    rows: int = 20_000,
    now: dt.datetime | None = None,
    teams=None,
    seed: int = 1,
    breakers: tuple = ("gpt-4o",),
) -> Plan:
    """Migrate `store`, then fill it with a plan's usage, budgets and open breakers (tests)."""
    from elfctl.bootstrap import migrations_dir
    from elfctl.config import load
    from elfctl.services.platform.migrate import migrate

    migrate(store, migrations_dir(load()))
    plan = make_plan(teams or default_teams(6), days=days, now=now, seed=seed, rows=rows)
    write(store, plan)
    write_budgets(store, plan)
    for model in breakers:
        open_breaker(store, model)
    return plan
