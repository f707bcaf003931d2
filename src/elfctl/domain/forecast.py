"""Forecasting daily spend: models, rolling-origin backtest, intervals and budget exhaustion.

Pure Python (a team's history is a few hundred numbers; numpy would cost more to import than the
arithmetic). Values are floats in nano-dollars; callers round once when they report.

- Models: last value, moving average (7 days), seasonal naive (same weekday last week), and a
  seasonal model with a linear trend, in two flavours: one factor per weekday (`seasonal_trend`) and
  weekday/weekend factors only (`weekpart_trend`, steadier on short or noisy histories).
- Each team's model is chosen by a rolling-origin backtest on its own history (lowest mean absolute
  error over the next `BT_HORIZON` days from each origin).
- Intervals: P10/P50/P90 from the chosen model's backtest errors (the 80th percentile of the
  absolute cumulative error over n days), so their width is what the model really missed by.
  Coverage is measured honestly: each backtest origin is judged with the interval learnt from
  earlier origins only.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MIN_HISTORY = 28  # days needed to fit, and still backtest, a weekly model
BT_HORIZON = 7  # days ahead each backtest origin forecasts
BT_ORIGINS = 56  # most recent origins backtested
FIT_WINDOW = 84  # the seasonal models fit the last 12 weeks (recent behaviour matters most)
QUANTILES = (0.1, 0.5, 0.9)

Forecaster = Callable[[Sequence[float], dt.date, int], list[float]]  # (history, its first day, h)


# --- models ---------------------------------------------------------------------------------------


def last_value(y: Sequence[float], start: dt.date, h: int) -> list[float]:
    return [y[-1]] * h


def moving_average(y: Sequence[float], start: dt.date, h: int, k: int = 7) -> list[float]:
    tail = y[-k:]
    return [sum(tail) / len(tail)] * h


def seasonal_naive(y: Sequence[float], start: dt.date, h: int) -> list[float]:
    if len(y) < 7:
        return last_value(y, start, h)
    week = list(y[-7:])
    return [week[i % 7] for i in range(h)]


def _seasonal(
    y: Sequence[float], start: dt.date, h: int, group: Callable[[int], int], groups: int
) -> list[float]:
    """y_t = exp(a + b t) * s[group(weekday)], fitted by alternating least squares (the level in log
    space) on the last FIT_WINDOW days; the trend stops growing beyond 2 weeks ahead (no runaway
    extrapolation over a month) and forecasts are >= 0."""
    off = max(0, len(y) - FIT_WINDOW)
    ys = list(y[off:])
    n = len(ys)
    dow0 = (start.weekday() + off) % 7
    g = [group((dow0 + t) % 7) for t in range(n + h)]
    s = [1.0] * groups
    a, b = 0.0, 0.0
    eps = max(sum(ys) / n * 0.01, 1e-9) if n else 1e-9  # keeps log() finite on zero-spend days
    for _ in range(3):  # converges in two or three rounds
        z = [ys[t] / s[g[t]] if s[g[t]] > 1e-9 else 0.0 for t in range(n)]
        a, b = _ols([math.log(max(v, 0.0) + eps) for v in z])  # growth compounds: log-linear level
        level = [math.exp(a + b * t) for t in range(n)]
        sums, counts = [0.0] * groups, [0] * groups
        for t in range(n):
            sums[g[t]] += ys[t] / level[t]
            counts[g[t]] += 1
        raw = [sums[i] / counts[i] if counts[i] else 1.0 for i in range(groups)]
        # Normalise so a week's average factor is 1 (the level carries the scale).
        week_mean = sum(raw[group(d)] for d in range(7)) / 7 or 1.0
        s = [v / week_mean for v in raw]
    out = []
    for i in range(h):
        steps = min(i + 1, 14)
        out.append(max(0.0, (math.exp(a + b * (n - 1 + steps)) - eps) * s[g[n + i]]))
    return out


def seasonal_trend(y, start, h):
    return _seasonal(y, start, h, lambda d: d, 7)


def weekpart_trend(y, start, h):
    return _seasonal(y, start, h, lambda d: 1 if d >= 5 else 0, 2)


def _ols(z: Sequence[float]) -> tuple[float, float]:
    """Least-squares line through (t, z_t), t = 0..n-1 (closed form for evenly spaced t)."""
    n = len(z)
    if n < 2:
        return (z[0] if n else 0.0), 0.0
    mx = (n - 1) / 2
    my = sum(z) / n
    sxx = n * (n * n - 1) / 12
    sxy = sum(t * v for t, v in enumerate(z)) - mx * my * n
    b = sxy / sxx
    return my - b * mx, b


MODELS: dict[str, Forecaster] = {
    "last_value": last_value,
    "moving_average": moving_average,
    "seasonal_naive": seasonal_naive,
    "seasonal_trend": seasonal_trend,
    "weekpart_trend": weekpart_trend,
}
SIMPLE_MODEL = "moving_average"


# --- backtest and intervals -----------------------------------------------------------------------


@dataclass
class Backtest:
    model: str
    mae: float  # mean absolute daily error (nano-USD)
    wape: float  # sum |error| / sum actual
    origins: int
    errors: list[list[float]] = field(default_factory=list)  # per origin: actual - forecast, per day ahead


def backtest(
    name: str,
    y: Sequence[float],
    start: dt.date,
    horizon: int = BT_HORIZON,
    origins: int = BT_ORIGINS,
    min_fit: int = 14,
) -> Backtest:
    fn = MODELS[name]
    first = max(min_fit, len(y) - horizon - origins + 1)
    errs, abs_sum, act_sum, count = [], 0.0, 0.0, 0
    for o in range(first, len(y) - horizon + 1):
        fc = fn(y[:o], start, horizon)
        e = [y[o + i] - fc[i] for i in range(horizon)]
        errs.append(e)
        abs_sum += sum(abs(v) for v in e)
        act_sum += sum(abs(y[o + i]) for i in range(horizon))
        count += horizon
    mae = abs_sum / count if count else math.inf
    return Backtest(name, mae, (abs_sum / act_sum) if act_sum else 0.0, len(errs), errs)


def quantile(values: Sequence[float], q: float) -> float:
    v = sorted(values)
    if not v:
        return 0.0
    pos = q * (len(v) - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def cumulative_error_quantiles(errors: list[list[float]], n: int) -> tuple[float, float, float]:
    """P10/P50/P90 offsets of a sum over the next n days around the point forecast.

    Backtest origins overlap (consecutive ones share most of their days), so their errors are
    strongly correlated: a median or one-sided quantile of them mostly repeats one lucky or unlucky
    stretch. The interval is therefore symmetric: +-P80 of the absolute cumulative error, measured
    for n up to the backtest horizon and widened by sqrt(n/H) beyond it."""
    if not errors or n <= 0:
        return (0.0, 0.0, 0.0)
    horizon = len(errors[0])
    m = min(n, horizon)
    width = quantile([abs(sum(e[:m])) for e in errors], 0.8)
    if n > horizon:
        width *= math.sqrt(n / horizon)
    return (-width, 0.0, width)


def coverage(errors: list[list[float]], warmup: int = 7) -> float | None:
    """Share of backtest days whose actual fell inside P10..P90, each origin judged with the
    interval learnt from earlier origins only (out of sample). None when there are too few."""
    if len(errors) <= warmup:
        return None
    inside = total = 0
    for k in range(warmup, len(errors)):
        for i in range(len(errors[k])):
            width = quantile([abs(e[i]) for e in errors[:k]], 0.8)
            inside += abs(errors[k][i]) <= width
            total += 1
    return inside / total if total else None


# --- the forecast of one series -------------------------------------------------------------------


@dataclass
class SeriesForecast:
    model: str
    reason: str  # why this model ("lowest backtest error" / "too little history ...")
    history_days: int
    backtest_mae: float | None
    backtest_wape: float | None
    coverage: float | None
    candidates: dict[str, float]  # model -> backtest MAE
    first_day: dt.date  # the first forecast day
    daily: list[float]  # P50 per day ahead (point forecast)
    errors: list[list[float]]  # the chosen model's backtest errors

    def total(self, n: int, skip: int = 0, first_weight: float = 1.0) -> tuple[float, float, float]:
        """P10/P50/P90 of the spend over days skip..skip+n-1 ahead (first day weighted, e.g. the
        part of today still to come). Never below zero."""
        point = sum(self.daily[skip : skip + n])
        if n > 0 and first_weight != 1.0:
            point -= self.daily[skip] * (1 - first_weight)
        q10, q50, q90 = cumulative_error_quantiles(self.errors, n)
        frac = (n - 1 + first_weight) / n if n else 0
        return tuple(max(0.0, point + q * frac) for q in (q10, q50, q90))


def forecast_series(y: Sequence[float], start: dt.date, horizon: int) -> SeriesForecast:
    """Forecast `horizon` days after the history y (daily spend from `start`, no gaps)."""
    first_day = start + dt.timedelta(days=len(y))
    if not y:
        return SeriesForecast(
            SIMPLE_MODEL,
            "no history: forecasting zero",
            0,
            None,
            None,
            None,
            {},
            first_day,
            [0.0] * horizon,
            [],
        )
    if len(y) < MIN_HISTORY:
        bt = (
            backtest(SIMPLE_MODEL, y, start, horizon=min(BT_HORIZON, max(1, len(y) // 3)), min_fit=3)
            if len(y) >= 6
            else None
        )
        errors = bt.errors if bt and bt.origins else _spread_errors(y)
        return SeriesForecast(
            SIMPLE_MODEL,
            f"too little history ({len(y)} days, need {MIN_HISTORY}): simple model, wide interval",
            len(y),
            bt.mae if bt and bt.origins else None,
            bt.wape if bt and bt.origins else None,
            None,
            {},
            first_day,
            moving_average(y, start, horizon),
            errors,
        )
    results = {name: backtest(name, y, start) for name in MODELS}
    best = min(results.values(), key=lambda r: (r.mae, name_rank(r.model)))
    return SeriesForecast(
        best.model,
        "lowest backtest error",
        len(y),
        best.mae,
        best.wape,
        coverage(best.errors),
        {k: v.mae for k, v in results.items()},
        first_day,
        MODELS[best.model](y, start, horizon),
        best.errors,
    )


def name_rank(name: str) -> int:
    """On a tie prefer the simpler model."""
    return list(MODELS).index(name) if name in MODELS else 99


def _spread_errors(y: Sequence[float]) -> list[list[float]]:
    """With almost no history, the 'errors' are each day's distance from the mean: an honest,
    wide interval rather than invented precision."""
    mean = sum(y) / len(y)
    return [[v - mean] for v in y]


# --- budgets --------------------------------------------------------------------------------------


def exhaustion_dates(
    fc: SeriesForecast, spent: float, budget: float, days_left: int, today_weight: float
) -> dict[str, dt.date | None]:
    """The day cumulative spend crosses `budget` within the next `days_left` days (the window's
    rest, today first with `today_weight` of its spend still to come). 'p10' is the early date
    (from the P90 spend path), 'p90' the late one; None: it will not within the window."""
    out: dict[str, dt.date | None] = {"p10": None, "p50": None, "p90": None}
    if spent >= budget:
        day = fc.first_day
        return {"p10": day, "p50": day, "p90": day}
    for n in range(1, days_left + 1):
        q10, q50, q90 = fc.total(n, first_weight=today_weight)
        day = fc.first_day + dt.timedelta(days=n - 1)
        for key, value in (("p10", q90), ("p50", q50), ("p90", q10)):
            if out[key] is None and spent + value >= budget:
                out[key] = day
    return out
