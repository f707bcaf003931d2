"""Names that become container names, labels, paths and Kubernetes objects: DNS-1123 labels."""

from __future__ import annotations

import re

from elfctl.errors import InputError

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_HINT = "use lower case letters, digits and '-', starting and ending alphanumeric, max 63"
# Registry words, here so team.yaml and the registry share them without importing each other.
CAPABILITY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")  # a capability tag teams are found by
LIFECYCLES = ("experimental", "production", "deprecated")


def is_dns_label(name: object) -> bool:
    return isinstance(name, str) and len(name) <= 63 and bool(DNS1123.match(name))


def check_team_name(name: object) -> str:
    """`name` if it can name a team, else the InputError every command shows for it."""
    if not is_dns_label(name):
        raise InputError(f"team name {name!r} is not a DNS-1123 label", hint=DNS1123_HINT)
    return name  # type: ignore[return-value]
