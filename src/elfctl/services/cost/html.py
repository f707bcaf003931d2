"""A self-contained HTML cost report: the dashboard's figures, the forecast and the recommendations.

One file, inline CSS and inline SVG charts, no script and no link to anything outside it, so it
opens anywhere (mail attachment, CI artefact) without a network. Every figure is an element with a
`data-fig` name and its exact value in `data-value`, so tests (and people) can match it to `--json`.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path

from elfctl.output import to_data
from elfctl.services.cost import optimize
from elfctl.services.cost import predict as cost_predict
from elfctl.services.cost import views as cost_views
from elfctl.services.cost.views import usd

LEVEL_COLOUR = {"ok": "#2e7d32", "soft": "#f9a825", "hard": "#c62828", "none": "#90a4ae"}


def write_html(
    store,
    path,
    team=None,
    since=None,
    until=None,
    *,
    now: dt.datetime | None = None,
    catalog: dict | None = None,
) -> dict:
    """Write the report to `path`; return its figures as data (the same shapes as the --json views)."""
    now = now or dt.datetime.now(dt.UTC)
    if catalog is None:
        from elfctl.adapters import model_catalog

        catalog = model_catalog.load()
    days = 30 if not since else 366
    dash = cost_views.dashboard(store, team=team, days=days, now=now, since=since, until=until)
    pred = cost_predict.predict(store, team=team, horizon="month", now=now)
    recs = optimize.optimize(store, catalog, team=team, now=now)
    doc = _page(dash, pred, recs)
    target = Path(path)
    try:
        target.write_text(doc, encoding="utf-8")
    except OSError as exc:
        from elfctl.errors import InputError

        raise InputError(
            f"{target}: cannot write the HTML report ({exc.strerror})",
            hint="choose a writable path for --html",
        ) from None
    return {
        "path": str(target),
        "bytes": len(doc.encode()),
        "dashboard": to_data(dash),
        "forecast": to_data(pred),
        "recommendations": to_data(recs),
    }


def _fig(name: str, value, text: str | None = None, tag: str = "td") -> str:
    shown = text if text is not None else ("-" if value is None else str(value))
    return f'<{tag} data-fig="{escape(name)}" data-value="{escape(str(value))}">{escape(shown)}</{tag}>'


def _money(name: str, nano) -> str:
    return _fig(name, nano, usd(nano))


def _pct(x) -> str:
    return "-" if x is None else f"{x:.1%}"


def _bar(ratio, soft: float, level: str, width: int = 160) -> str:
    if ratio is None:
        return '<svg width="160" height="12"></svg>'
    fill = min(ratio, 1.0) * width
    soft_x = soft * width
    return (
        f'<svg width="{width}" height="12" role="img" aria-label="{ratio:.0%} of budget">'
        f'<rect width="{width}" height="12" fill="#eceff1"/>'
        f'<rect width="{fill:.1f}" height="12" fill="{LEVEL_COLOUR[level]}"/>'
        f'<line x1="{soft_x:.1f}" x2="{soft_x:.1f}" y1="0" y2="12" stroke="#555" stroke-dasharray="2"/></svg>'
    )


def _daily_chart(daily: list) -> str:
    w, h, pad = 720, 160, 24
    top = max((d.cost_nanousd for d in daily), default=0) or 1
    bw = (w - pad) / max(1, len(daily))
    bars = []
    for i, d in enumerate(daily):
        bh = d.cost_nanousd / top * (h - pad)
        bars.append(
            f'<rect class="day" x="{pad + i * bw:.1f}" y="{h - pad - bh:.1f}" width="{bw * 0.8:.1f}" '
            f'height="{bh:.1f}" fill="#1565c0"><title>{d.day}: {usd(d.cost_nanousd)}</title></rect>'
        )
    labels = "".join(
        f'<text x="{pad + i * bw:.1f}" y="{h - 6}" font-size="9">{d.day[5:]}</text>'
        for i, d in enumerate(daily)
        if i % max(1, len(daily) // 8) == 0
    )
    return (
        f'<svg id="daily-chart" width="{w}" height="{h}" role="img" aria-label="spend per day">'
        f'<text x="0" y="12" font-size="10">{usd(top)}</text>{"".join(bars)}{labels}</svg>'
    )


def _fan(tf) -> str:
    """History (bars) and the forecast's P50 path for one team."""
    w, h = 240, 60
    hist = [d["cost_nanousd"] for d in tf.history]
    fut = [d["p50_nanousd"] for d in tf.daily]
    top = max(hist + fut + [1])
    n = len(hist) + len(fut)
    bw = w / max(1, n)
    parts = [
        f'<rect x="{i * bw:.1f}" y="{h - v / top * h:.1f}" width="{bw * 0.8:.1f}" height="{v / top * h:.1f}" '
        f'fill="#90caf9"/>'
        for i, v in enumerate(hist)
    ]
    pts = " ".join(f"{(len(hist) + i) * bw + bw / 2:.1f},{h - v / top * h:.1f}" for i, v in enumerate(fut))
    parts.append(f'<polyline points="{pts}" fill="none" stroke="#e65100" stroke-width="2"/>')
    return (f'<svg class="fan" width="{w}" height="{h}" role="img" aria-label="history and forecast">'
            f'{"".join(parts)}</svg>')


def _saving(i: int, r) -> str:
    if not r.monthly_savings_nanousd:
        return ""
    nano = r.monthly_savings_nanousd
    return _fig(f"rec.{i}.monthly_savings_nanousd", nano, usd(nano) + "/month", "span")


def _cards(dash) -> str:
    t, p = dash.today_totals, dash.period_totals
    return "".join(
        f'<div class="card"><div class="k">{k}</div>{v}</div>'
        for k, v in (
            ("today", _fig("today.cost_nanousd", t.cost_nanousd, usd(t.cost_nanousd), "div")),
            (
                f"{dash.since} .. {dash.until}",
                _fig("period.cost_nanousd", p.cost_nanousd, usd(p.cost_nanousd), "div"),
            ),
            ("calls", _fig("period.calls", p.calls, f"{p.calls:,}", "div")),
            ("error rate", _fig("period.error_rate", round(p.error_rate, 6), _pct(p.error_rate), "div")),
            (
                "fallback rate",
                _fig("period.fallback_rate", round(p.fallback_rate, 6), _pct(p.fallback_rate), "div"),
            ),
        )
    )


def _team_rows(teams) -> str:
    return "".join(
        f"<tr><td>{escape(v.team)}</td>{_money(f'team.{v.team}.today_nanousd', v.today_nanousd)}"
        f"<td>{usd(v.daily_budget_nanousd)}</td><td>{_bar(v.today_ratio, v.soft_ratio, v.today_level)}</td>"
        f"{_money(f'team.{v.team}.month_nanousd', v.month_nanousd)}<td>{usd(v.monthly_budget_nanousd)}</td>"
        f"<td>{_bar(v.month_ratio, v.soft_ratio, v.month_level)}</td>"
        f"{_money(f'team.{v.team}.projected_today_nanousd', v.projected_today_nanousd)}</tr>"
        for v in teams
    )


def _model_rows(models) -> str:
    return "".join(
        f"<tr><td>{escape(m.model)}</td>{_money(f'model.{m.model}.cost_nanousd', m.cost_nanousd)}"
        f"{_fig(f'model.{m.model}.calls', m.calls, f'{m.calls:,}')}<td>{m.prompt_tokens:,}</td>"
        f"<td>{m.completion_tokens:,}</td><td>{_pct(m.error_rate)}</td><td>{_pct(m.fallback_rate)}</td></tr>"
        for m in models
    )


def _forecast_rows(forecasts) -> str:
    return "".join(
        f"<tr><td>{escape(f.team)}</td><td>{escape(f.model)}<div class='small'>{escape(f.reason)}</div></td>"
        f"<td>{usd(f.backtest_mae_nanousd)}/day</td><td>{_pct(f.coverage)}</td>"
        f"{_money(f'forecast.{f.team}.month.p10_nanousd', f.month.p10_nanousd)}"
        f"{_money(f'forecast.{f.team}.month.p50_nanousd', f.month.p50_nanousd)}"
        f"{_money(f'forecast.{f.team}.month.p90_nanousd', f.month.p90_nanousd)}"
        f"<td>{usd(f.month.budget_nanousd)}</td><td>{escape(f.month.verdict or '-')}</td>"
        f"<td>{_fan(f)}</td></tr>"
        for f in forecasts
    )


def _rec_items(recs) -> str:
    return "".join(
        f"<li><b>{escape(r.title)}</b> {_saving(i, r)}<div>{escape(r.action)}</div>"
        f"<div class='small'>evidence: {escape(str(r.evidence.get('text', '')))}</div></li>"
        for i, r in enumerate(recs.items)
    ) or "<li>nothing to recommend</li>"


def _breaker_items(breakers) -> str:
    return "".join(
        f"<li>{escape(b.name)}: {escape(b.state)} since {escape(b.opened_at or '?')}</li>" for b in breakers
    ) or "<li>all closed</li>"


def _page(dash, pred, recs) -> str:
    cards, team_rows, model_rows = _cards(dash), _team_rows(dash.teams), _model_rows(dash.models)
    fc_rows, rec_items, breakers = _forecast_rows(pred.teams), _rec_items(recs), _breaker_items(dash.breakers)
    at_risk = ", ".join(escape(x) for x in dash.at_risk) or "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>elfctl cost report</title>
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#222}}
table{{border-collapse:collapse;margin:8px 0 20px}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}}
.card{{display:inline-block;padding:10px 16px;margin:0 10px 10px 0;background:#f5f7fa;border-radius:6px;
font-size:20px}}
.k{{font-size:12px;color:#666}} .small{{font-size:11px;color:#666}}
</style></head><body>
<h1>elfctl cost report{(": " + escape(dash.team)) if dash.team else ""}</h1>
<p class="small">generated {escape(dash.generated_at)}; today is {dash.today} (UTC);
period {dash.since} .. {dash.until}</p>
<section id="totals">{cards}</section>
<h2>Budgets</h2><p>most likely to hit a budget today: <b id="at-risk">{at_risk}</b></p>
<table id="teams"><tr><th>team</th><th>today</th><th>daily budget</th><th></th><th>this month</th>
<th>monthly budget</th><th></th><th>today, projected</th></tr>{team_rows}</table>
<h2>Spend per day</h2>{_daily_chart(dash.daily)}
<h2>By model</h2><table id="models"><tr><th>model</th><th>cost</th><th>calls</th><th>prompt tokens</th>
<th>completion tokens</th><th>errors</th><th>fallbacks</th></tr>{model_rows}</table>
<h2>Forecast to the end of the month</h2>
<table id="forecast"><tr><th>team</th><th>model</th><th>backtest error</th><th>coverage</th><th>P10</th>
<th>P50</th><th>P90</th><th>monthly budget</th><th>budget</th><th>last 28 days and forecast</th></tr>
{fc_rows}</table>
<h2>Recommendations</h2><ul id="recommendations">{rec_items}</ul>
<h2>Circuit breakers</h2><ul id="breakers">{breakers}</ul>
</body></html>
"""
