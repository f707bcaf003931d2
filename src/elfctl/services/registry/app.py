"""`elfctl registry ...` use cases with the run's App: flags and files made into entries, reads that
first let the platform probe its deployed teams, the dependency graph, agent cards."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elfctl.domain import agent_card
from elfctl.domain import registry as rules
from elfctl.domain.registry import Entry
from elfctl.errors import InputError
from elfctl.services.registry import entries as reg
from elfctl.services.registry import probes

ACTOR = "registry"  # the trail's actor for what `elfctl registry` reads make the platform do


@dataclass
class Swept:
    probed: list[dict[str, str]] = field(default_factory=list)  # {name, outcome, note}
    removed: list[str] = field(default_factory=list)
    changed: list[dict[str, str]] = field(default_factory=list)  # {name, was, now}


def refresh(app, force: bool = False, sweep: bool = True) -> Swept:
    """Before answering: probe the deployed teams that are due (all with force), then sweep (remove
    what is past deregister_after, note status changes), each change a row in the actions trail.
    `list` and `show` skip the sweep: their answers are computed from the timestamps anyway, and a
    read stays one indexed query however many entries there are."""
    done = probes.probe_due(app.store, lambda: app.target, app.config.get("discovery.probe_period_s"),
                            f"{ACTOR} probe", force=force, warn=app.output.warn)
    removed, changed = reg.sweep(app.store, f"{ACTOR} sweep") if sweep else ([], [])
    return Swept([{"name": n, "outcome": o, "note": note} for n, o, note in done], removed,
                 [{"name": n, "was": a, "now": b} for n, a, b in changed])


def entry_from(doc: dict, where: str) -> Entry:
    """A registry file's entry (YAML/JSON mapping) as an Entry; unknown keys refused by name."""
    allowed = ("name", "kind", "url", "endpoints", "owner", "lifecycle", "capabilities", "depends_on", "ttl",
               "deregister_after", "metadata")
    if not isinstance(doc, dict):
        raise InputError(f"{where}: must be a mapping, got {type(doc).__name__}", hint="write `name: ...` lines")
    unknown = [k for k in doc if k not in allowed]
    if unknown:
        raise InputError(f"{where}.{unknown[0]}: unknown key", hint=f"allowed: {', '.join(allowed)}")
    if "name" not in doc:
        raise InputError(f"{where}.name: missing", hint="every entry needs a name")
    for key in ("capabilities", "depends_on"):
        if not isinstance(doc.get(key) or [], list):
            raise InputError(f"{where}.{key}: must be a list", hint="write it as a list")
    for key in ("endpoints", "metadata"):
        if not isinstance(doc.get(key) or {}, dict):
            raise InputError(f"{where}.{key}: must be a mapping", hint="write it as key: value lines")
    return Entry(
        name=rules.check_name(doc["name"], f"{where}.name"), kind=str(doc.get("kind") or "service"),
        url=rules.check_url(doc.get("url"), f"{where}.url"), endpoints=dict(doc.get("endpoints") or {}),
        owner=doc.get("owner"), lifecycle=rules.check_lifecycle(doc.get("lifecycle"), f"{where}.lifecycle"),
        capabilities=rules.check_capabilities(doc.get("capabilities") or [], f"{where}.capabilities"),
        depends_on=tuple(doc.get("depends_on") or []), metadata=dict(doc.get("metadata") or {}),
        ttl_s=rules.parse_seconds(doc.get("ttl"), f"{where}.ttl"),
        deregister_after_s=rules.parse_seconds(doc.get("deregister_after"), f"{where}.deregister_after"))


def read_file(path: Path) -> list[Entry]:
    """Entries from a YAML or JSON file: one mapping, a list, or {entries: [...]}. All checked first."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--file {path}: cannot read ({exc.strerror})", hint="check the path") from None
    try:
        if path.suffix == ".json":
            doc = json.loads(text)
        else:
            import yaml

            # libyaml's loader where PyYAML has it: a file of thousands of entries in ms, not a minute
            doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (a safe loader)
    except ValueError as exc:  # json.JSONDecodeError
        raise InputError(f"--file {path}: not valid JSON: {exc}", hint="fix the syntax") from None
    except Exception as exc:  # noqa: BLE001 (yaml.YAMLError: yaml is imported lazily)
        raise InputError(f"--file {path}: not valid YAML: {' '.join(str(exc).split())[:200]}",
                         hint="fix the syntax") from None
    if isinstance(doc, dict) and "entries" in doc:
        doc = doc["entries"]
    docs = doc if isinstance(doc, list) else [doc]
    if not docs:
        raise InputError(f"--file {path}: no entries", hint="write one mapping with name, kind, url, ...")
    return [entry_from(d, f"{path}: entries[{i}]" if isinstance(doc, list) else str(path)) for i, d in enumerate(docs)]


def register_all(app, found: list[Entry]) -> list[Entry]:
    """Register every entry in one transaction: one refused, none registered."""
    names = [e.name for e in found]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise InputError(f"entry {dup!r} is listed twice", hint="keep one")
    return reg.register_many(app.store, found)


@dataclass
class Shown:
    entry: Entry
    card: dict[str, Any] | None = None
    card_signature: dict[str, Any] | None = None  # outside agents: {"verified": bool, "note": ...}
    dependents: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # depends_on naming nothing registered


def show(app, name: str) -> Shown:
    rules.check_name(name)
    refresh(app, sweep=False)
    e = reg.get(app.store, name)
    if e is None:
        raise reg.NotRegistered(f"registry: no entry {name!r}", hint="see `elfctl registry list`")
    everything = reg.graph(app.store)
    card = e.metadata.get("card") if e.kind == "agent" else agent_card.team_card(e) if e.kind == "team" else None
    signature = e.metadata.get("signature") or ({"verified": False, "note": "imported before signatures were "
                                                 "checked"} if e.kind == "agent" and card else None)
    return Shown(e, card, signature, sorted(n for n, o in everything.items() if name in o.depends_on),
                 [d for d in e.depends_on if d not in everything])


@dataclass
class Graph:
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]  # {"from", "to", "problem": None | "missing" | "critical"}

    @property
    def problems(self) -> list[dict[str, Any]]:
        return [e for e in self.edges if e["problem"]]


def dependency_graph(store) -> Graph:
    everything = reg.graph(store)
    nodes = [{"name": e.name, "kind": e.kind, "status": e.status} for e in everything.values()]
    edges = []
    for e in everything.values():
        for dep in e.depends_on:
            other = everything.get(dep)
            problem = "missing" if other is None else "critical" if other.status == "critical" else None
            edges.append({"from": e.name, "to": dep, "status": other.status if other else "missing",
                          "problem": problem})
    return Graph(nodes, edges)


def dot(g: Graph) -> str:
    """Graphviz: missing dependencies dashed red boxes, critical ones red."""
    colour = {"passing": "darkgreen", "warning": "orange", "critical": "red"}
    lines = ["digraph registry {", "  rankdir=LR;"]
    for n in g.nodes:
        lines.append(f'  "{n["name"]}" [label="{n["name"]}\\n{n["kind"]} {n["status"]}", color={colour[n["status"]]}];')
    for m in sorted({e["to"] for e in g.edges if e["problem"] == "missing"}):
        lines.append(f'  "{m}" [label="{m}\\nmissing", color=red, style=dashed];')
    for e in g.edges:
        attrs = ' [color=red, label="' + e["problem"] + '"]' if e["problem"] else ""
        lines.append(f'  "{e["from"]}" -> "{e["to"]}"{attrs};')
    return "\n".join(lines + ["}"])


def import_card(app, url: str, name: str | None, capabilities: tuple[str, ...], ttl_s: float | None,
                jwks: str | None = None) -> Entry:
    """Register an outside agent from its A2A card: `URL/.well-known/agent-card.json`, then the older
    `agent.json` (or URL itself when it names a .json file). With `jwks` (a file or URL), the card's
    signatures are checked against its keys: a card that is unsigned, or whose signatures do not
    verify, is refused (nothing registered). What was checked is kept with the entry for `show`."""
    from elfctl.adapters import agent_cards

    rules.check_url(url, "URL")
    timeout_s = app.config.get("registry.timeout_s")
    found_at, doc = agent_cards.fetch(url, agent_card.CARD_PATHS, timeout_s=timeout_s)
    card = agent_card.check_card(doc, found_at)
    signature = _check_signatures(card, found_at, jwks, timeout_s)
    entry_name = name or _dns_name(card["name"])
    skills = [s for sk in card["skills"] for s in sk.get("tags", []) if isinstance(s, str)]
    caps = rules.check_capabilities([*capabilities, *(t.lower() for t in skills if rules.CAPABILITY.match(t.lower()))])
    entry = Entry(entry_name, kind="agent", url=agent_card.card_url(card), capabilities=caps,
                  owner=(card.get("provider") or {}).get("organization"), ttl_s=ttl_s, source="import-card",
                  metadata={"card": card, "card_url": found_at, "description": card["description"],
                            "version": card["version"], "signature": signature})
    return reg.register(app.store, entry)


def _check_signatures(card: dict, found_at: str, jwks: str | None, timeout_s: float) -> dict[str, Any]:
    """{"verified": bool, "note": ...}: what `registry show` says of the card's signatures."""
    signed = bool(card.get("signatures"))
    if jwks is None:
        return {"verified": False, "note": "signed, not verified (no --jwks at import)" if signed else "unsigned"}
    if not signed:
        raise InputError(f"{found_at}: the agent card has no signatures, and --jwks asks for them to be verified",
                         hint="import it without --jwks to register it unverified, or ask its provider for a signed card")
    from elfctl.adapters import card_signatures

    kid = card_signatures.verify(card, card_signatures.load_jwks(jwks, timeout_s), jwks)
    return {"verified": True, "note": f"verified: signature with key {kid} of {jwks}"}


def _dns_name(text: str) -> str:
    import re

    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-")
    if not rules.is_dns_label(name):
        raise InputError(f"the card's name {text!r} makes no registry name", hint="pass --name NAME")
    return name
