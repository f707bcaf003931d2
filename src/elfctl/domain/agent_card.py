"""A2A agent cards (protocol v1.0, JSON names as the a2a-sdk's AgentCard message): a team's card
built from its registry entry, and the check an imported card must pass. Pure: no I/O. The required
fields here are those the A2A proto marks REQUIRED (tests/registry checks them against a2a-sdk)."""

from __future__ import annotations

from typing import Any

from elfctl.errors import InputError

PROTOCOL_VERSION = "1.0"
CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")  # v1.0, then the older name
_REQUIRED = ("name", "description", "supportedInterfaces", "version", "capabilities", "defaultInputModes",
             "defaultOutputModes", "skills")
_INTERFACE = ("url", "protocolBinding", "protocolVersion")
_SKILL = ("id", "name", "description", "tags")


def team_card(entry, description: str = "") -> dict[str, Any]:
    """The card of a registered team: its URLs (platform network first), its skills from team.yaml."""
    meta = entry.metadata
    urls = [u for u in (entry.endpoints.get("network"), entry.endpoints.get("host"), entry.url) if u]
    skills = meta.get("skills") or [{"id": cap, "name": cap, "description": f"{entry.name}: {cap}", "tags": [cap]}
                                    for cap in entry.capabilities]
    card: dict[str, Any] = {
        "name": entry.name,
        "description": description or meta.get("description") or f"The {entry.name} team",
        "version": str(meta.get("revision") or meta.get("version") or "0"),
        "supportedInterfaces": [{"url": u, "protocolBinding": "HTTP+JSON", "protocolVersion": PROTOCOL_VERSION}
                                for u in dict.fromkeys(urls)],
        "capabilities": {"streaming": False, "pushNotifications": False},
        "defaultInputModes": ["text/plain", "application/json"],
        "defaultOutputModes": ["text/plain", "application/json"],
        "skills": [{"id": s["id"], "name": s["name"], "description": s["description"], "tags": list(s.get("tags") or []),
                    **({"examples": list(s["examples"])} if s.get("examples") else {})} for s in skills],
    }
    if entry.owner:
        card["provider"] = {"organization": entry.owner, "url": urls[0] if urls else ""}
    return card


def check_card(doc: Any, where: str) -> dict[str, Any]:
    """`doc` if it has the shape of an A2A v1.0 card, else InputError naming the first field wrong."""

    def fail(field: str, problem: str) -> InputError:
        return InputError(f"{where}: agent card field {field}: {problem}",
                          hint="an A2A v1.0 card needs name, description, version, supportedInterfaces "
                               "[{url, protocolBinding, protocolVersion}], capabilities, defaultInputModes, "
                               "defaultOutputModes and skills [{id, name, description, tags}]")

    if not isinstance(doc, dict):
        raise fail("(top level)", f"must be a JSON object, got {type(doc).__name__}")
    for key in _REQUIRED:
        if key not in doc:
            raise fail(key, "missing")
    for key in ("name", "description", "version"):
        if not isinstance(doc[key], str) or not doc[key].strip():
            raise fail(key, f"must be non-empty text, got {doc[key]!r}")
    if not isinstance(doc["capabilities"], dict):
        raise fail("capabilities", "must be an object")
    for key in ("defaultInputModes", "defaultOutputModes"):
        if not isinstance(doc[key], list) or not all(isinstance(m, str) for m in doc[key]):
            raise fail(key, "must be a list of media types")
    _items(doc, "supportedInterfaces", _INTERFACE, fail, at_least_one=True)
    _items(doc, "skills", _SKILL, fail)
    for i, skill in enumerate(doc["skills"]):
        if not isinstance(skill["tags"], list):
            raise fail(f"skills[{i}].tags", "must be a list")
    return doc


def _items(doc: dict, key: str, required: tuple[str, ...], fail, at_least_one: bool = False) -> None:
    items = doc[key]
    if not isinstance(items, list) or (at_least_one and not items):
        raise fail(key, "must be a list" + (" with at least one entry" if at_least_one else ""))
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise fail(f"{key}[{i}]", "must be an object")
        for field in required:
            if field not in item:
                raise fail(f"{key}[{i}].{field}", "missing")
            if field != "tags" and (not isinstance(item[field], str) or not item[field]):
                raise fail(f"{key}[{i}].{field}", f"must be non-empty text, got {item[field]!r}")


def card_url(card: dict[str, Any]) -> str:
    """The card's first interface URL (where the agent answers)."""
    return card["supportedInterfaces"][0]["url"]
