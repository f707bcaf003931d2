# No `from __future__ import annotations` here: Typer would eval every option's annotation string
# (a compile each, ~3 ms of `registry list`); evaluated at definition they cost nothing more.
from pathlib import Path
from typing import Annotated

import typer

from elfctl.cli.common import ElfGroup, JsonOpt, finish, get_app


class _Verbs(ElfGroup):
    """The registry's verbs, built only when one runs (ElfGroup's lazy table, as the root's): Typer
    building all eight from their signatures cost ~10 ms of every `registry list`. Filled at the end
    of this module from the functions' docstrings."""

    lazy: dict[str, tuple[str, str, str]] = {}


app = typer.Typer(
    help="The service registry: teams, services, MCP servers and outside agents; liveness by heartbeat; "
         "discovery by capability.",
    no_args_is_help=True,
    cls=_Verbs,
)


def _rows(entries) -> list[dict]:
    return [{"name": e.name, "kind": e.kind, "status": e.status, "url": e.url, "owner": e.owner,
             "lifecycle": e.lifecycle, "capabilities": list(e.capabilities), "depends_on": list(e.depends_on),
             "reason": e.reason, "heartbeat_at": e.heartbeat_at} for e in entries]


def _table(rows, title: str):
    from rich.table import Table

    table = Table(title=title)
    for col in ("name", "kind", "status", "url", "capabilities", "owner", "why"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["kind"], r["status"], r["url"] or "", ", ".join(r["capabilities"]),
                      r["owner"] or "", r["reason"] if r["status"] != "passing" else "")
    return table


def register(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Entry name (a DNS-1123 label); omit with --file.")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Where it answers: scheme://host:port/path.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="service, mcp, database, agent, team, ...")] = "service",
    capability: Annotated[list[str] | None, typer.Option("--capability", "-c", help="A tag it is found by (repeat).")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Who answers for it.")] = None,
    lifecycle: Annotated[str | None, typer.Option("--lifecycle", help="experimental, production or deprecated.")] = None,
    depends_on: Annotated[list[str] | None, typer.Option("--depends-on", help="An entry it needs (repeat).")] = None,
    ttl: Annotated[str | None, typer.Option("--ttl", help="Critical without a heartbeat this long (e.g. 30s).")] = None,
    deregister_after: Annotated[str | None, typer.Option(
        "--deregister-after", help="Removed after this long in critical (e.g. 10m).")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Register the entries of a YAML/JSON file.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Register (or replace) an entry from flags, or every entry of a file (all or none)."""
    from elfctl.domain import registry as rules
    from elfctl.domain.registry import Entry
    from elfctl.errors import InputError
    from elfctl.services.registry import app as svc

    app_ = get_app(ctx, json_mode)
    if (file is None) == (name is None):
        raise InputError("registry register: give NAME with --url, or --file FILE", hint="see `elfctl registry register --help`")
    if file is not None:
        found = svc.read_file(file)
    else:
        found = [Entry(rules.check_name(name), kind=kind, url=rules.check_url(url), owner=owner,
                       lifecycle=rules.check_lifecycle(lifecycle), capabilities=rules.check_capabilities(capability),
                       depends_on=tuple(depends_on or ()), ttl_s=rules.parse_seconds(ttl, "--ttl"),
                       deregister_after_s=rules.parse_seconds(deregister_after, "--deregister-after"))]
    done = svc.register_all(app_, found)
    app_.output.result(_rows(done), lambda rs: "\n".join(f"registered {r['name']} ({r['kind']}, {r['status']})" for r in rs))


def deregister(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The entry to remove.")],
    json_mode: JsonOpt = False,
) -> None:
    """Remove an entry (exit 1 when there is none)."""
    from elfctl.services.registry import entries as reg

    app_ = get_app(ctx, json_mode)
    if not reg.deregister(app_.store, name):
        raise reg.NotRegistered(f"registry: no entry {name!r}", hint="see `elfctl registry list`")
    app_.output.result({"name": name, "deregistered": True}, lambda r: f"deregistered {name}")


def heartbeat(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The entry that is alive.")],
    status: Annotated[str, typer.Option("--status", help="pass, warn or fail.")] = "pass",
    note: Annotated[str, typer.Option("--note", help="One line on why (shown beside a warn or fail).")] = "",
    json_mode: JsonOpt = False,
) -> None:
    """Say an entry is alive (resets its TTL), or that it is degraded (warn) or failing (fail)."""
    from elfctl.services.registry import entries as reg

    app_ = get_app(ctx, json_mode)
    e = reg.heartbeat(app_.store, name, status, note)
    app_.output.result({"name": e.name, "status": e.status, "note": e.note, "heartbeat_at": e.heartbeat_at},
                       lambda r: f"{r['name']}: {r['status']}" + (f" ({r['note']})" if r["note"] else ""))


def list_(
    ctx: typer.Context,
    capability: Annotated[str | None, typer.Option("--capability", "-c", help="Only entries with this tag.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="passing, warning or critical.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Entries matching every filter, with their liveness now."""
    from elfctl.services.registry import app as svc
    from elfctl.services.registry import entries as reg

    app_ = get_app(ctx, json_mode)
    svc.refresh(app_, sweep=False)
    rows = _rows(reg.find(app_.store, capability=capability, kind=kind, owner=owner, status=status))
    app_.output.result(rows, lambda rs: _table(rs, "registry") if rs else "no entries match")


def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The entry.")],
    json_mode: JsonOpt = False,
) -> None:
    """One entry: endpoints, liveness, dependencies both ways, metadata and its A2A agent card."""
    from elfctl.services.registry import app as svc

    app_ = get_app(ctx, json_mode)
    shown = svc.show(app_, name)
    app_.output.result(shown, _shown)


def _shown(s) -> str:
    import json

    e = s.entry
    lines = [f"{e.name} ({e.kind}): {e.status}" + (f": {e.reason}" if e.status != "passing" else ""),
             f"url: {e.url or '-'}"]
    lines += [f"endpoint {k}: {v}" for k, v in e.endpoints.items()]
    lines += [f"owner: {e.owner or '-'}  lifecycle: {e.lifecycle or '-'}",
              f"capabilities: {', '.join(e.capabilities) or '-'}",
              f"depends on: {', '.join(e.depends_on) or '-'}" + (f" (missing: {', '.join(s.missing)})" if s.missing else ""),
              f"needed by: {', '.join(s.dependents) or '-'}",
              f"ttl: {e.ttl_s or '-'}  deregister after: {e.deregister_after_s or '-'}  last heartbeat: {e.heartbeat_at}"]
    meta = {k: v for k, v in e.metadata.items() if k not in ("card", "signature")}
    if meta:
        lines.append("metadata: " + json.dumps(meta, sort_keys=True))
    if s.card_signature:
        lines.append(f"card signature: {s.card_signature['note']}")
    if s.card:
        lines.append("agent card:\n" + json.dumps(s.card, indent=2))
    return "\n".join(lines)


def graph(
    ctx: typer.Context,
    as_dot: Annotated[bool, typer.Option("--dot", help="Graphviz DOT on stdout.")] = False,
    json_mode: JsonOpt = False,
) -> None:
    """Who depends on whom; missing and critical dependencies marked (exit 1 when there are any)."""
    from elfctl.errors import OperationFailed
    from elfctl.services.registry import app as svc

    app_ = get_app(ctx, json_mode)
    svc.refresh(app_)
    g = svc.dependency_graph(app_.store)
    if as_dot and not json_mode:
        typer.echo(svc.dot(g))
        raise typer.Exit(1 if g.problems else 0)
    failure = None
    if g.problems:
        p = g.problems[0]
        failure = OperationFailed(f"{len(g.problems)} dependency problem(s): {p['from']} -> {p['to']} is {p['status']}",
                                  hint=f"register or fix {p['to']} (`elfctl registry show {p['to']}`)")
    finish(app_, g, _graph_text, failure)


def _graph_text(g) -> str:
    if not g.edges:
        return f"{len(g.nodes)} entries, no dependencies"
    return "\n".join(f"{e['from']} -> {e['to']} ({e['status']})" + (f"  <- {e['problem'].upper()}" if e["problem"] else "")
                     for e in g.edges)


def import_card(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The agent's base URL, or its card's URL.")],
    name: Annotated[str | None, typer.Option("--name", help="Registry name (default: from the card's name).")] = None,
    capability: Annotated[list[str] | None, typer.Option("--capability", "-c", help="An extra tag (repeat).")] = None,
    ttl: Annotated[str | None, typer.Option("--ttl", help="Critical without a heartbeat this long.")] = None,
    jwks: Annotated[str | None, typer.Option(
        "--jwks", help="Verify the card's signatures with this JWKS (file or URL); refuse it if they fail.")] = None,
    json_mode: JsonOpt = False,
) -> None:
    """Register an outside agent from its A2A card (/.well-known/agent-card.json, then agent.json)."""
    from elfctl.domain import registry as rules
    from elfctl.services.registry import app as svc

    app_ = get_app(ctx, json_mode)
    e = svc.import_card(app_, url, name and rules.check_name(name, "--name"), tuple(capability or ()),
                        rules.parse_seconds(ttl, "--ttl"), jwks)
    app_.output.result(_rows([e])[0] | {"card_url": e.metadata["card_url"], "card_signature": e.metadata["signature"]},
                       lambda r: f"registered agent {r['name']} at {r['url']} (card {r['card_url']}; "
                                 f"{r['card_signature']['note']})")


def sweep(ctx: typer.Context, json_mode: JsonOpt = False) -> None:
    """Probe every deployed team now, remove entries past deregister_after; each change in the trail."""
    from elfctl.services.registry import app as svc

    app_ = get_app(ctx, json_mode)
    app_.output.result(svc.refresh(app_, force=True), _swept)


def _swept(s) -> str:
    lines = [f"probed {p['name']}: {p['outcome']} ({p['note']})" for p in s.probed]
    lines += [f"removed {n} (critical past its deregister_after)" for n in s.removed]
    lines += [f"{c['name']}: {c['was']} -> {c['now']}" for c in s.changed]
    return "\n".join(lines) or "nothing to probe or remove"


_Verbs.lazy = {verb: (__name__, fn.__name__, fn.__doc__.split("\n")[0]) for verb, fn in (
    ("register", register), ("deregister", deregister), ("heartbeat", heartbeat), ("list", list_),
    ("show", show), ("graph", graph), ("import-card", import_card), ("sweep", sweep))}
