"""A team: `teams/<name>/team.yaml` beside its build context. Validation of the parsed document,
no I/O (adapters/team_files.py reads the files). Every error names the file, the field and the fix."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from elfctl.domain.names import CAPABILITY, DNS1123, DNS1123_HINT, LIFECYCLES, is_dns_label
from elfctl.errors import InputError

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
CPU = re.compile(r"^\d+(\.\d+)?m?$")
MEMORY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$")
_MEMORY_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
INT64_MAX = 2**63 - 1  # Docker's Memory and NanoCpus, Kubernetes' quantities: signed 64-bit
MIN_MEMORY = 6 * 2**20  # the smallest memory limit Docker accepts
ACTIONS = ("warn", "downgrade", "block")
SECRETS_AS = ("env", "files")
SECRETS_DIR = "/run/secrets"  # secrets_as: files puts each value here as a file named NAME
# What deploy injects into a team that uses the LLM gateway (llm.gateway, on by default).
GATEWAY_ENV = ("OPENAI_BASE_URL", "OPENAI_API_KEY")


@dataclass(frozen=True)
class HealthSpec:
    path: str = "/health"
    period_s: float = 1.0
    timeout_s: float = 2.0
    success_threshold: int = 2
    failure_threshold: int = 3
    start_timeout_s: float = 60.0  # how long the new version may take to pass the gate
    soak_s: float | None = None  # verification window after the switch (None: deploy.soak_s)


@dataclass(frozen=True)
class BuildSpec:
    context: str = "."
    dockerfile: str = "Dockerfile"


@dataclass(frozen=True)
class BudgetSpec:
    daily_usd: float | None = None
    monthly_usd: float | None = None
    soft_limit: float = 0.8
    soft_action: str = "warn"
    hard_action: str = "block"


@dataclass(frozen=True)
class LLMSpec:
    model: str | None = None  # preferred model
    fallbacks: tuple[str, ...] = ()  # cheaper models, then other providers, in order
    budget: BudgetSpec = field(default_factory=BudgetSpec)
    gateway: bool = True  # deploy hands the team the platform's LLM gateway (False: the team brings its own)


@dataclass(frozen=True)
class ResourcesSpec:
    cpu: str | None = None  # Kubernetes notation: "500m", "1"
    memory: str | None = None  # "256Mi", "1Gi"


@dataclass(frozen=True)
class SkillSpec:
    """One skill of the team's A2A agent card (AgentSkill: id, name, description, tags)."""

    id: str
    name: str
    description: str
    tags: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class TeamSpec:
    name: str
    path: Path  # the team.yaml
    port: int = 8080
    replicas: int = 1
    description: str = ""
    build: BuildSpec = field(default_factory=BuildSpec)
    health: HealthSpec = field(default_factory=HealthSpec)
    env: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # names only; values come from the credential store
    secrets_as: str = "env"  # "files": each value in SECRETS_DIR/NAME, its path in NAME_FILE
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    llm: LLMSpec = field(default_factory=LLMSpec)
    mcp_servers: tuple[str, ...] = ()
    host_port: int | None = None  # where users reach the team on this machine (None: Docker picks one)
    # The registry (elfctl registry): who owns it, how mature it is, what it offers and needs.
    owner: str | None = None
    lifecycle: str | None = None  # experimental | production | deprecated
    capabilities: tuple[str, ...] = ()  # free-form tags other teams find it by
    depends_on: tuple[str, ...] = ()  # registry entries (teams, services, MCP servers) by name
    skills: tuple[SkillSpec, ...] = ()  # for its agent card

    def secret_files(self) -> dict[str, str]:
        """NAME -> path in the container, when secrets_as is files (else empty)."""
        return {s: f"{SECRETS_DIR}/{s}" for s in self.secrets} if self.secrets_as == "files" else {}

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def context_dir(self) -> Path:
        return (self.folder / self.build.context).resolve()


# field -> (type check description, allowed keys of nested tables)
_TOP = ("name", "description", "port", "replicas", "build", "health", "env", "secrets", "secrets_as",
        "resources", "llm", "mcp_servers", "host_port", "owner", "lifecycle", "capabilities", "depends_on",
        "skills")
_NESTED = {
    "build": ("context", "dockerfile"),
    "health": ("path", "period_s", "timeout_s", "success_threshold", "failure_threshold", "start_timeout_s",
               "soak_s"),
    "resources": ("cpu", "memory"),
    "llm": ("model", "fallbacks", "budget", "gateway"),
    "llm.budget": ("daily_usd", "monthly_usd", "soft_limit", "soft_action", "hard_action"),
    "skills[]": ("id", "name", "description", "tags", "examples"),
}


class _V:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, fld: str, problem: str, fix: str) -> InputError:
        return InputError(f"{self.path}: {fld}: {problem}", hint=fix)

    def keys(self, table: Any, where: str, allowed: tuple[str, ...]) -> dict:
        if not isinstance(table, dict):
            raise self.fail(where or "(top level)", f"must be a mapping, got {type(table).__name__}",
                            f"write {where or 'the file'} as `key: value` lines")
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                fld = f"{where}.{key}" if where else str(key)
                fix = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
                raise self.fail(fld, "unknown key", fix)
        return table

    def integer(self, value: Any, fld: str, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.fail(fld, f"must be a whole number from {lo} to {hi}, got {value!r}",
                            f"set {fld} to a number in {lo}..{hi}")
        return value

    def number(self, value: Any, fld: str, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise self.fail(fld, f"must be a number from {lo:g} to {hi:g}, got {value!r}",
                            f"set {fld} to a number in {lo:g}..{hi:g}")
        return float(value)

    def string(self, value: Any, fld: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(fld, f"must be a non-empty string, got {value!r}", f"set {fld} to text")
        return value

    def names(self, value: Any, fld: str, pattern: re.Pattern, what: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(fld, f"must be a list, got {type(value).__name__}", f"write {fld} as a YAML list")
        for i, item in enumerate(value):
            if not isinstance(item, str) or not pattern.match(item):
                raise self.fail(f"{fld}[{i}]", f"{item!r} is not {what}", f"use {what}")
        if len(set(value)) != len(value):
            raise self.fail(fld, "lists a name twice", "remove the duplicate")
        return tuple(value)


def memory_bytes(q: str | None) -> int | None:
    """'256Mi' -> 268435456 (exact); None for no limit."""
    if not q:
        return None
    unit = next((u for u in _MEMORY_UNITS if q.endswith(u)), "")
    return int(Decimal(q[: len(q) - len(unit)]) * _MEMORY_UNITS.get(unit, 1))


def nano_cpus(q: str | None) -> int | None:
    """'500m' -> 500000000, '1.5' -> 1500000000 (Docker's NanoCpus); None for no limit."""
    if not q:
        return None
    return int(Decimal(q[:-1]) * 10**6) if q.endswith("m") else int(Decimal(q) * 10**9)


def parse(doc: Any, path: Path, expected_name: str | None = None) -> TeamSpec:
    v = _V(path)
    doc = v.keys(doc, "", _TOP)
    kw: dict[str, Any] = {"name": _name(v, doc, expected_name), "path": path}
    if "description" in doc:
        d = doc["description"]
        if d is not None and not isinstance(d, str):
            raise v.fail("description", f"must be text, got {type(d).__name__}", "write it as one string")
        kw["description"] = d or ""
    if "port" in doc:
        kw["port"] = v.integer(doc["port"], "port", 1, 65535)
    if doc.get("host_port") is not None:
        kw["host_port"] = v.integer(doc["host_port"], "host_port", 1, 65535)
    if "replicas" in doc:
        kw["replicas"] = v.integer(doc["replicas"], "replicas", 0, 100)
    sections = (("build", _build), ("health", _health), ("env", _env), ("secrets", _secrets),
                ("secrets_as", _secrets_as), ("resources", _resources), ("llm", _llm))
    for key, section in sections:  # in this order: secrets checks env, secrets_as checks both
        if key in doc:
            kw[key] = section(v, doc[key], kw)
    _gateway_clash(v, kw)
    if "mcp_servers" in doc:
        kw["mcp_servers"] = v.names(doc["mcp_servers"] or [], "mcp_servers", DNS1123, "a DNS-1123 name")
    _registry_fields(v, doc, kw)
    return TeamSpec(**kw)


def _registry_fields(v: _V, doc: dict, kw: dict) -> None:
    if doc.get("owner") is not None:
        kw["owner"] = v.string(doc["owner"], "owner")
    if doc.get("lifecycle") is not None:
        if doc["lifecycle"] not in LIFECYCLES:
            raise v.fail("lifecycle", f"{doc['lifecycle']!r} is not a lifecycle", f"use one of {', '.join(LIFECYCLES)}")
        kw["lifecycle"] = doc["lifecycle"]
    if "capabilities" in doc:
        kw["capabilities"] = v.names(doc["capabilities"] or [], "capabilities", CAPABILITY,
                                     "a capability tag (lower case letters, digits, '.', '_', '-')")
    if "depends_on" in doc:
        deps = v.names(doc["depends_on"] or [], "depends_on", DNS1123, "a registry entry name (DNS-1123)")
        if kw["name"] in deps:
            raise v.fail("depends_on", f"{kw['name']} depends on itself ({kw['name']} -> {kw['name']})",
                         "remove it from its own depends_on")
        kw["depends_on"] = deps
    if "skills" in doc:
        kw["skills"] = _skills(v, doc["skills"] or [])


def _skills(v: _V, value: Any) -> tuple[SkillSpec, ...]:
    if not isinstance(value, list):
        raise v.fail("skills", f"must be a list, got {type(value).__name__}",
                     "write skills as a YAML list of {id, name, description, tags}")
    out, seen = [], set()
    for i, item in enumerate(value):
        where = f"skills[{i}]"
        s = v.keys(item, where, _NESTED["skills[]"])
        for key in ("id", "name", "description"):
            if key not in s:
                raise v.fail(f"{where}.{key}", "missing", f"add {key}: (an agent card's skill needs id, name, description)")
        sk = {k: v.string(s[k], f"{where}.{k}") for k in ("id", "name", "description")}
        for key in ("tags", "examples"):
            items = s.get(key) or []
            if not isinstance(items, list) or not all(isinstance(t, str) and t for t in items):
                raise v.fail(f"{where}.{key}", "must be a list of text", "write it as a YAML list")
            sk[key] = tuple(items)
        if sk["id"] in seen:
            raise v.fail(f"{where}.id", f"{sk['id']!r} is used twice", "give each skill its own id")
        seen.add(sk["id"])
        out.append(SkillSpec(**sk))
    return tuple(out)


def _name(v: _V, doc: dict, expected_name: str | None) -> str:
    if "name" not in doc:
        raise v.fail("name", "missing", f"add `name: {expected_name or v.path.parent.name}`")
    name = doc["name"]
    if not is_dns_label(name):
        raise v.fail("name", f"{name!r} is not a DNS-1123 label", DNS1123_HINT)
    if expected_name and name != expected_name:
        raise v.fail("name", f"'{name}' differs from its folder '{expected_name}'",
                     f"rename the folder or set name: {expected_name}")
    return name


def _build(v: _V, value: Any, kw: dict) -> BuildSpec:
    b = v.keys(value or {}, "build", _NESTED["build"])
    spec = BuildSpec(**{k: v.string(b[k], f"build.{k}") for k in b})
    if Path(spec.context).is_absolute() or ".." in Path(spec.context).parts:
        raise v.fail("build.context", "must stay inside the team folder", "use a relative path like '.'")
    return spec


def _health(v: _V, value: Any, kw: dict) -> HealthSpec:
    h = v.keys(value or {}, "health", _NESTED["health"])
    hk: dict[str, Any] = {}
    if "path" in h:
        p = v.string(h["path"], "health.path")
        if not p.startswith("/") or any(c.isspace() for c in p):
            raise v.fail("health.path", f"{p!r} must start with '/' and contain no spaces", "use a path such as /health")
        hk["path"] = p
    for k in ("period_s", "timeout_s", "start_timeout_s", "soak_s"):
        if k in h:
            hk[k] = v.number(h[k], f"health.{k}", 0.0 if k == "soak_s" else 0.05, 3600)
    for k in ("success_threshold", "failure_threshold"):
        if k in h:
            hk[k] = v.integer(h[k], f"health.{k}", 1, 100)
    return HealthSpec(**hk)


def _env(v: _V, value: Any, kw: dict) -> dict[str, str]:
    env = value or {}
    if not isinstance(env, dict):
        raise v.fail("env", "must be a mapping of NAME: value", "write env as `NAME: value` lines")
    for k, val in env.items():
        if not isinstance(k, str) or not ENV_NAME.match(k):
            raise v.fail(f"env.{k}", "is not a valid environment variable name", "use UPPER_SNAKE_CASE")
        if isinstance(val, (dict, list)) or val is None:
            raise v.fail(f"env.{k}", "must be a plain value", "quote it as a string")
    return {k: (str(val).lower() if isinstance(val, bool) else str(val)) for k, val in env.items()}


def _secrets(v: _V, value: Any, kw: dict) -> tuple[str, ...]:
    secrets = v.names(value or [], "secrets", ENV_NAME, "an UPPER_SNAKE_CASE name")
    clash = set(secrets) & set(kw.get("env", {}))
    if clash:
        raise v.fail("secrets", f"{sorted(clash)[0]} is also in env", "keep secret values out of env")
    return secrets


def _secrets_as(v: _V, value: Any, kw: dict) -> str:
    if value not in SECRETS_AS:
        raise v.fail("secrets_as", f"{value!r} is not a way to hand secrets over",
                     "use env (environment variables) or files (/run/secrets/NAME)")
    clash = {f"{s}_FILE" for s in kw.get("secrets", ())} & set(kw.get("env", {}))
    if value == "files" and clash:
        raise v.fail("env", f"{sorted(clash)[0]} is set by secrets_as: files", "remove it from env")
    return value


def _resources(v: _V, value: Any, kw: dict) -> ResourcesSpec:
    """Quantities that Docker (int64 bytes and nano-CPUs, at least 6 MiB) and Kubernetes accept."""
    r = v.keys(value or {}, "resources", _NESTED["resources"])
    rk: dict[str, str] = {}
    checks = (("cpu", CPU, nano_cpus, 1, "e.g. 500m or 2", "more than 0 and at most 9223372036 cores"),
              ("memory", MEMORY, memory_bytes, MIN_MEMORY, "e.g. 256Mi", "from 6Mi to 8388607Ti (int64 bytes)"))
    for key, pattern, amount, least, example, allowed in checks:
        if key not in r:
            continue
        q = str(r[key])
        if not pattern.match(q):
            raise v.fail(f"resources.{key}", f"{r[key]!r} is not a {key} quantity", f"use {example}")
        try:
            n = amount(q)
        except (InvalidOperation, ValueError):
            n = -1
        if not least <= n <= INT64_MAX:
            raise v.fail(f"resources.{key}", f"{q} is out of range: Docker and Kubernetes take {allowed}",
                         f"use {example}")
        rk[key] = q
    return ResourcesSpec(**rk)


def _llm(v: _V, value: Any, kw: dict) -> LLMSpec:
    llm = v.keys(value or {}, "llm", _NESTED["llm"])
    lk: dict[str, Any] = {}
    if "model" in llm:
        lk["model"] = v.string(llm["model"], "llm.model")
    if "fallbacks" in llm:
        fb = llm["fallbacks"] or []
        if not isinstance(fb, list) or not all(isinstance(m, str) and m for m in fb):
            raise v.fail("llm.fallbacks", "must be a list of model names", "write it as a YAML list")
        lk["fallbacks"] = tuple(fb)
    if "budget" in llm:
        lk["budget"] = _budget(v, llm["budget"])
    if "gateway" in llm:
        if not isinstance(llm["gateway"], bool):
            raise v.fail("llm.gateway", f"must be true or false, got {llm['gateway']!r}",
                         "write `gateway: false` to opt out of the LLM gateway (default: true)")
        lk["gateway"] = llm["gateway"]
    return LLMSpec(**lk)


def _gateway_clash(v: _V, kw: dict) -> None:
    """Deploy sets GATEWAY_ENV for a team on the gateway: a value of its own would be overridden
    without a word (and a provider key listed here would enter the team's containers)."""
    if not kw.get("llm", LLMSpec()).gateway:
        return
    for fld, names in (("env", kw.get("env", {})), ("secrets", kw.get("secrets", ()))):
        clash = sorted(set(GATEWAY_ENV) & set(names))
        if clash:
            raise v.fail(fld, f"{clash[0]} is set by deploy for the LLM gateway (llm.gateway is on)",
                         f"remove {clash[0]} from {fld}, or set `llm: {{gateway: false}}` to pass your own")


def _budget(v: _V, value: Any) -> BudgetSpec:
    b = v.keys(value or {}, "llm.budget", _NESTED["llm.budget"])
    bk: dict[str, Any] = {}
    for k in ("daily_usd", "monthly_usd"):
        if k in b and b[k] is not None:
            bk[k] = v.number(b[k], f"llm.budget.{k}", 0, 1e9)
    if "soft_limit" in b:
        bk["soft_limit"] = v.number(b["soft_limit"], "llm.budget.soft_limit", 0.01, 1.0)
    for k in ("soft_action", "hard_action"):
        if k in b:
            if b[k] not in ACTIONS:
                raise v.fail(f"llm.budget.{k}", f"{b[k]!r} is not an action", f"use one of {', '.join(ACTIONS)}")
            bk[k] = b[k]
    return BudgetSpec(**bk)
