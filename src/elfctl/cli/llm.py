"""`elfctl llm test`: one real call through the whole path."""

from __future__ import annotations

from typing import Annotated

import typer

from elfctl.cli.common import JsonOpt, get_app

app = typer.Typer(help="LLM calls through elfctl: budgets, fallbacks, breakers.", no_args_is_help=True)


@app.command("test")
def test(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option("--team", help="Team whose policy and budget to use.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Model to ask (default: the team's).")] = None,
    api_base: Annotated[
        str | None, typer.Option("--api-base", help="Provider URL (OpenAI-compatible).")
    ] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Make one small call and print model, tokens, cost, latency and budget left."""
    from elfctl.services.cost import app as cost_ops

    app_ = get_app(ctx, json_mode)
    r = cost_ops.llm_test(app_, team, model, api_base)

    def human(r):
        from elfctl.domain.budget import fmt_usd

        left = r["budget_remaining_nanousd"]
        lines = [
            f"team {r['team']}: {r['model']} answered"
            + (f" (asked {r['requested_model']}: {r['fallback_reason']})" if r["fallback_reason"] else ""),
            f"tokens {r['prompt_tokens']} in / {r['completion_tokens']} out, "
            f"cost {fmt_usd(r['cost_nanousd']) if r['priced'] else 'UNPRICED'}, {r['latency_ms']} ms",
            "budget left: "
            + (", ".join(f"{k} {fmt_usd(v)}" for k, v in left.items()) if left else "no budget"),
        ]
        return "\n".join(lines)

    app_.output.result(r, human)
