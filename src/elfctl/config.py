"""Configuration: defaults < elfctl.toml (< its [profiles.NAME] table) < ELFCTL_* env < flags.

Every known key is declared once in SCHEMA (type, default, help); unknown keys are errors with a
did-you-mean, so a typo never silently falls back to a default. Each effective value remembers
where it came from, for `elfctl config show`.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

from elfctl.domain.health_gate import DEFAULT_WINDOW_S
from elfctl.errors import ConfigError
from elfctl.redact import MASK, redact_url

CONFIG_FILE = "elfctl.toml"


class Key(NamedTuple):  # a NamedTuple, not a frozen dataclass: ~200 are built at every command's start
    type: type
    default: Any
    help: str
    secret: bool = False
    lo: float | None = None  # numbers: the allowed range, inclusive
    hi: float | None = None


# "section.key" -> Key. Later features add their keys here: one place, one list.
SCHEMA: dict[str, Key] = {
    "project.name": Key(str, "", "Name of this platform, shown in reports."),
    "store.url": Key(str, "", "Store URL: sqlite:///path (default .elf/elf.db), postgresql://..., or "
                      "supabase+https://<ref>.supabase.co (the REST API, with supabase.key)"),
    "store.busy_timeout_ms": Key(int, 10000, "How long a SQLite writer waits for the lock.", lo=0, hi=3600000),
    "store.lock_timeout_s": Key(float, 60.0, "How long `db migrate` waits for another migrate to finish.", lo=0, hi=86400),
    "store.pooler": Key(str, "auto", "PostgreSQL behind a transaction pooler (no session state): auto (port 6543), "
                                     "transaction or none."),
    "store.migrations_dir": Key(str, "", "Folder of migration files (default: the ones shipped with elfctl)."),
    "supabase.url": Key(str, "", "Supabase project URL, https://<ref>.supabase.co: with supabase.key, the store is "
                        "the project's REST API (also SUPABASE_URL)."),
    "supabase.key": Key(str, "", "Supabase service_role key for the REST API (also SUPABASE_KEY).", secret=True),
    "supabase.db_url": Key(str, "", "The Supabase project's database connection string (also SUPABASE_DB_URL): "
                           "when set, the store uses it instead of the REST API, and migrate, deploy and creds "
                           "need it.", secret=True),
    "supabase.timeout_s": Key(float, 10.0, "Timeout of one request to the Supabase REST API.", lo=0.1, hi=600),
    "supabase.max_rows": Key(int, 1000, "The project's Max rows (Dashboard > Settings > API): reads over REST ask "
                                        "for pages of this size, so none is cut short.", lo=1, hi=1_000_000),
    "supabase.ca_file": Key(str, "", "PEM file of certificate authorities the REST API's certificate may also be "
                            "signed by (a self-hosted Supabase behind a private CA), relative to the project root."),
    "deploy.target": Key(str, "docker", "Where teams run: docker or kubernetes."),
    "teams.dir": Key(str, "teams", "Folder holding teams/<name>/team.yaml, relative to the project root."),
    "health.timeout_s": Key(float, 5.0, "Per-check timeout for `elfctl health`.", lo=0.1, hi=3600),
    "health.disk_warn_free": Key(float, 0.10, "Warn when less than this share of the disk is free.", lo=0, hi=1),
    "health.disk_fail_free": Key(float, 0.02, "Fail when less than this share of the disk is free.", lo=0, hi=1),
    "health.memory_warn_free": Key(float, 0.10, "Warn when less than this share of memory is available.", lo=0, hi=1),
    "health.memory_fail_free": Key(float, 0.03, "Fail when less than this share of memory is available.", lo=0, hi=1),
    "docker.host": Key(str, "", "Docker engine URL (default: DOCKER_HOST, else the local socket)."),
    "docker.timeout_s": Key(float, 15.0, "Hard timeout of every Docker API call.", lo=0.1, hi=3600),
    "docker.build_timeout_s": Key(float, 600.0, "Hard read timeout of docker build, push and pull.", lo=1, hi=86400),
    "docker.autostart": Key(bool, True, "`infra up` starts an installed but stopped local dockerd."),
    "registry.url": Key(str, "", "External image registry host[:port] (empty: a local registry container)."),
    "registry.port": Key(int, 5000, "Host port of the local registry container (127.0.0.1).", lo=1, hi=65535),
    "registry.image": Key(str, "elfctl/registry:local", "Image of the local registry (built from "
                          "/usr/bin/docker-registry when absent; a mirrored registry:2 works too)."),
    "registry.container": Key(str, "elfctl-registry", "Name of the local registry container."),
    "registry.volume": Key(str, "elfctl-registry-data", "Volume holding the local registry's images."),
    "registry.timeout_s": Key(float, 5.0, "Timeout of every registry HTTP request.", lo=0.1, hi=3600),
    "discovery.probe_period_s": Key(float, 10.0, "Service registry: a deployed team's endpoints are probed "
                                    "again when its last heartbeat is older than this.", lo=0.1, hi=86400),
    "discovery.team_ttl_s": Key(float, 60.0, "Service registry: TTL of deployed teams' entries (critical when "
                                "no probe vouched for them this long).", lo=1, hi=86400),
    "discovery.gateway_probes": Key(bool, True, "Service registry: the gateway probes deployed teams' health paths "
                                    "every probe period in the background (their heartbeats on an idle platform)."),
    "discovery.probe_concurrency": Key(int, 8, "Service registry: most team probes the gateway runs at once.",
                                       lo=1, hi=256),
    "deploy.prefix": Key(str, "elfctl", "Prefix of the containers, proxies and labels elfctl creates."),
    "deploy.network": Key(str, "elfctl", "Docker network the teams and their proxies share."),
    "deploy.base_image": Key(str, "elfctl/base:busybox", "Local base image of teams (from busybox-static)."),
    "deploy.python_image": Key(str, "python:3.11-slim-bookworm", "Python 3.11 image the gateway (and Python teams, "
                               "FROM elfctl/python:3.11) build on; built from Debian's packages when it cannot be pulled."),
    "deploy.publish_address": Key(str, "127.0.0.1", "Host address the team proxies publish their port on."),
    "deploy.timeout_s": Key(float, 120.0, "Time budget of verifying one deploy: the health gate, then the "
                            "verification window after the switch.", lo=0.1, hi=86400),
    "deploy.soak_s": Key(float, DEFAULT_WINDOW_S, "Verification window after the switch (Docker), for teams "
                         "whose team.yaml sets no health.soak_s: a replica that exits, restarts, is OOM-killed "
                         "or fails its checks meanwhile is switched back.", lo=0, hi=3600),
    "deploy.lock_ttl_s": Key(float, 30.0, "Deploy lock lease; a killed holder's lock expires after it.", lo=1, hi=86400),
    "deploy.lock_wait_s": Key(float, 0.0, "How long a deploy waits for another deploy of the team.", lo=0, hi=86400),
    "deploy.keep_images": Key(int, 5, "Successful revisions per team whose images stay on this machine.", lo=1, hi=1000),
    "deploy.secrets_dir": Key(str, "/dev/shm/elfctl-secrets",
                              "Docker, secrets_as: files: the tmpfs folder holding each container's secret files."),
    "deploy.stop_grace_s": Key(int, 10, "Docker: seconds replaced replicas get after SIGTERM (after the "
                               "switch, in the background) before they are killed and removed.", lo=0, hi=3600),
    "gateway.url_in_teams": Key(str, "", "The LLM gateway's OpenAI base URL as deployed teams reach it (default: "
                                "http://elfctl-gateway:<gateway.port>/v1 on Docker, "
                                "http://elfctl-gateway.<namespace>.svc:<gateway.port>/v1 on Kubernetes)."),
    "creds.backend": Key(str, "auto", "Where credential values live: auto (OS keyring if usable, else "
                                      "file), keyring or file."),
    "creds.file": Key(str, ".elf/credentials.enc", "The encrypted credential file (relative: to the root)."),
    "creds.keyring_service": Key(str, "", "OS keyring service name (default: elfctl:<hash of the root>)."),
    "creds.grace_period": Key(str, "24h", "How long the previous version stays readable after a rotation."),
    "creds.max_age": Key(str, "", "Maximum age of a credential version for `creds check` (e.g. 90d)."),
    "creds.warn_before": Key(str, "14d", "Warn this long before a credential expires or reaches max age."),
    "llm.prices_file": Key(str, "prices.yaml", "Price overrides for custom models (litellm key names, USD/token)."),
    "llm.timeout_s": Key(float, 30.0, "Timeout of one LLM request.", lo=0.1, hi=3600),
    "llm.retry_max_time_s": Key(float, 20.0, "Longest time spent retrying one model (429/5xx/timeouts).", lo=0, hi=3600),
    "llm.retry_max_tries": Key(int, 3, "Attempts per model before falling back.", lo=1, hi=100),
    "llm.breaker_fail_max": Key(int, 5, "Failures in a row that open a model's circuit.", lo=1, hi=1000),
    "llm.breaker_reset_s": Key(float, 60.0, "How long an open circuit waits before a probe call.", lo=0.1, hi=86400),
    "llm.output_cap_tokens": Key(int, 4096, "Output tokens reserved when a call gives no max_tokens.", lo=1, hi=10000000),
    "llm.reservation_ttl_s": Key(float, 300.0, "When a budget reservation of a killed process expires.", lo=1, hi=86400),
    "llm.record": Key(str, "background", "How usage rows reach the store after the spool write: background "
                                         "(a writer thread; elfctl.llm.flush() waits) or sync."),
    "gateway.host": Key(str, "127.0.0.1", "Address `elfctl gateway serve` listens on (0.0.0.0 inside a container)."),
    "gateway.port": Key(int, 18400, "Port of the LLM gateway.", lo=1, hi=65535),
    "gateway.replicas": Key(int, 2, "Kubernetes: replicas of the gateway Deployment (they share the Postgres store).",
                            lo=1, hi=100),
    "gateway.workers": Key(int, 1, "Gateway worker processes sharing the port.", lo=1, hi=64),
    "gateway.max_body_bytes": Key(int, 4 * 1024 * 1024, "Largest request body the gateway reads (413 above).",
                                  lo=1024, hi=1 << 30),
    "gateway.idle_timeout_s": Key(float, 15.0, "A gateway connection idle, or a request half-sent, this long is "
                                              "closed.", lo=0.1, hi=3600),
    "telemetry.enabled": Key(bool, False, "Export OpenTelemetry traces and metrics of LLM calls and deploys (also "
                             "on when an endpoint is set, unless this is set to false or OTEL_SDK_DISABLED=true)."),
    "telemetry.endpoint": Key(str, "", "OTLP/HTTP collector base URL, e.g. http://127.0.0.1:4318 "
                              "(also OTEL_EXPORTER_OTLP_ENDPOINT; /v1/traces and /v1/metrics are appended)."),
    "telemetry.service_name": Key(str, "elfctl", "service.name of the spans and metrics (also OTEL_SERVICE_NAME)."),
    "telemetry.capture_content": Key(bool, False, "Record prompts and answers on LLM spans (off: never recorded)."),
    "telemetry.team_endpoint": Key(str, "", "Collector URL as seen from inside team containers, passed to them by "
                                   "deploy (default: telemetry.endpoint)."),
    "kubernetes.kubeconfig": Key(str, "", "kubeconfig path(s); default as kubectl: $KUBECONFIG, else ~/.kube/config."),
    "kubernetes.context": Key(str, "", "kubeconfig context (default: its current-context); --context overrides."),
    "kubernetes.namespace": Key(str, "", "Namespace of this environment (default: elfctl-<profile>, or elfctl)."),
    "kubernetes.registry": Key(str, "", "Registry host the cluster pulls from; an image-pull secret is made for it."),
    "kubernetes.pull_secret": Key(str, "elfctl-registry", "Name of the image-pull secret."),
    "kubernetes.request_timeout_s": Key(float, 10.0, "Hard timeout of each Kubernetes API call.", lo=0.1, hi=3600),
    "kubernetes.poll_s": Key(float, 1.0, "How often a rollout's status is read.", lo=0.05, hi=60),
    "kubernetes.restore_timeout_s": Key(float, 120.0, "How long restoring the previous revision may take.", lo=1, hi=86400),
    "kubernetes.version": Key(str, "", "Schema version for --render without a cluster (default: newest shipped)."),
    "notify.slack_webhook_url": Key(str, "", "Slack incoming-webhook URL for alerts (or SLACK_WEBHOOK_URL, as a "
                                    "variable or a credential of that name).", secret=True),
    "notify.webhooks": Key(list, [], "Generic alert webhooks: a list of http(s) URLs that receive each event as "
                                     "JSON (env: comma-separated).", secret=True),
    "notify.webhook_secret": Key(str, "", "HMAC-SHA256 key signing generic webhook bodies "
                                          "(X-Elfctl-Signature: sha256=...).", secret=True),
    "notify.timeout_s": Key(float, 5.0, "Timeout of one alert delivery.", lo=0.1, hi=300),
}

# [retry.<policy>]: the named retry policies of elfctl.resilience (defaults: its POLICIES table, which
# tests/resilience/test_policies.py holds these to).
for _name, (_tries, _base, _cap, _max) in {"quick": (3, 0.5, 0.5, 5.0), "standard": (5, 1.0, 30.0, 120.0),
                                           "aggressive": (10, 0.5, 60.0, 300.0), "network": (5, 2.0, 30.0, 60.0),
                                           "database": (3, 0.5, 5.0, 30.0)}.items():
    SCHEMA[f"retry.{_name}.attempts"] = Key(int, _tries, f"Attempts of the {_name} retry policy.", lo=1, hi=1000)
    SCHEMA[f"retry.{_name}.base_s"] = Key(float, _base, f"First wait of the {_name} policy.", lo=0, hi=3600)
    SCHEMA[f"retry.{_name}.cap_s"] = Key(float, _cap, f"Longest wait of the {_name} policy.", lo=0, hi=3600)
    SCHEMA[f"retry.{_name}.max_time_s"] = Key(float, _max, f"Overall deadline of one {_name} run.", lo=0.01, hi=86400)
SCHEMA["resilience.queue_max"] = Key(int, 1000, "Most requests queued per resource by the queue_request strategy.",
                                     lo=1, hi=10_000_000)
SCHEMA["resilience.cache_ttl_s"] = Key(float, 300.0, "How long a use_cache response is served.", lo=0.001, hi=31_536_000)
# The resource monitor (`elfctl resources`): per type, warning/critical thresholds in percent of the
# limit, and the fallback strategies of its policy (the seed's table; services/resources/status.py).
RESOURCE_TYPES = ("api_quota", "memory", "cpu", "database", "mcp_server", "network", "docker", "k8s_pod")
_RESOURCE_LEVELS = {"memory": (75.0, 90.0), "database": (90.0, 95.0), "docker": (85.0, 95.0)}
_FALLBACKS = {"api_quota": ["retry", "switch_provider", "degrade_service", "queue_request"],
              "memory": ["use_cache", "degrade_service", "scale_down"],
              "database": ["retry", "switch_provider", "use_cache", "circuit_break"],
              "mcp_server": ["retry", "switch_provider", "circuit_break"],
              "docker": ["retry", "scale_down"], "k8s_pod": ["retry", "scale_down", "circuit_break"]}
for _t in RESOURCE_TYPES:
    _warn, _crit = _RESOURCE_LEVELS.get(_t, (80.0, 95.0))
    SCHEMA[f"resources.{_t}.warning"] = Key(float, _warn, f"{_t}: warning at this percent of its limit.", lo=0, hi=1000)
    SCHEMA[f"resources.{_t}.critical"] = Key(float, _crit, f"{_t}: critical at this percent of its limit.", lo=0, hi=1000)
    SCHEMA[f"fallback.{_t}.strategies"] = Key(list, _FALLBACKS.get(_t, []), f"{_t}: fallback strategies, in order "
                                              "(retry, switch_provider, degrade_service, queue_request, use_cache, "
                                              "scale_down, circuit_break).")
SCHEMA["resources.timeout_s"] = Key(float, 3.0, "How long `elfctl resources` waits for each resource type "
                                    "(one that hangs is critical then).", lo=0.05, hi=3600)
SCHEMA["resources.interval_s"] = Key(float, 5.0, "Seconds between measurements of `resources --watch`.",
                                     lo=0.1, hi=86400)

# Environment variables that map to keys although they do not follow ELFCTL_<SECTION>_<KEY>.
ENV_ALIASES = {"SUPABASE_URL": "supabase.url", "SUPABASE_KEY": "supabase.key", "SUPABASE_DB_URL": "supabase.db_url",
               "SLACK_WEBHOOK_URL": "notify.slack_webhook_url",
               "OTEL_EXPORTER_OTLP_ENDPOINT": "telemetry.endpoint", "OTEL_SERVICE_NAME": "telemetry.service_name"}


def env_name(key: str) -> str:
    return "ELFCTL_" + key.replace(".", "_").upper()


def find_root(start: Path | None = None) -> tuple[Path, Path | None]:
    """The project root: the nearest folder upwards holding elfctl.toml, else the start folder."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return folder, candidate
    return start, None


class StoreChoice(NamedTuple):
    kind: str  # "sqlite" | "postgres" | "rest"
    url: str  # may hold a password: redact_url() it before showing
    why: str
    note: str | None = None
    key: str = "store.url"  # the setting the URL came from


def _kind(url: str) -> str:
    return "sqlite" if url.lower().startswith("sqlite") else "postgres"


class Config:
    """The effective configuration: `values` (key -> value) and where each came from (`sources`).
    A plain class: a dataclass costs ~0.5 ms to define, at the start of every command."""

    def __init__(self, root: Path, file: Path | None, profile: str | None, values: dict[str, Any] | None = None,
                 sources: dict[str, str] | None = None):
        self.root, self.file, self.profile = root, file, profile
        self.values: dict[str, Any] = {} if values is None else values
        self.sources: dict[str, str] = {} if sources is None else sources

    def __repr__(self) -> str:
        return f"Config(root={self.root!r}, file={self.file!r}, profile={self.profile!r})"

    def get(self, key: str) -> Any:
        if key not in SCHEMA:
            raise KeyError(key)
        return self.values.get(key, SCHEMA[key].default)

    def path(self, key: str) -> Path:
        """A path setting: as given when absolute, else relative to the project's root."""
        p = Path(self.get(key))
        return p if p.is_absolute() else self.root / p

    @property
    def elf_dir(self) -> Path:
        return self.root / ".elf"

    @property
    def store_url(self) -> str:
        """The URL of the store elfctl opens, in store.url's own syntax: a child process (the gateway,
        `notify send`) given it as ELFCTL_STORE_URL opens the same store (a REST store's key comes
        from supabase.key, which such a child inherits)."""
        choice = self.store_choice()
        return "supabase+" + choice.url if choice.kind == "rest" else choice.url

    def store_choice(self) -> StoreChoice:
        """Which store to open, and why. `store.url` names it explicitly and wins, unless it is a Supabase
        REST URL (supabase+https://); a Supabase project is reached through supabase.db_url when set (a
        database connection serves everything the REST API does, and the SQL that migrate, deploy and
        creds need), else through its REST API (supabase.url + supabase.key); else the embedded SQLite."""
        explicit = self.get("store.url")
        rest_url = explicit[len("supabase+"):] if explicit.lower().startswith("supabase+") else ""
        if explicit and not rest_url:
            ignored = [k for k in ("supabase.url", "supabase.key", "supabase.db_url") if self.get(k)]
            note = (f"{' and '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} set but not used: store.url "
                    "names the store explicitly and wins" if ignored else None)
            return StoreChoice(_kind(explicit), explicit, f"store.url from {self.source('store.url')}", note)
        db_url = self.get("supabase.db_url")
        if db_url:
            return StoreChoice("postgres", db_url, f"supabase.db_url from {self.source('supabase.db_url')}: "
                               "the Supabase project's database connection (used instead of its REST API)",
                               key="supabase.db_url")
        url_from = f"store.url from {self.source('store.url')}" if rest_url else \
            f"supabase.url from {self.source('supabase.url')}"
        rest_url = rest_url or self.get("supabase.url")
        if rest_url:
            return StoreChoice("rest", rest_url, f"Supabase REST API: {url_from}, supabase.key from "
                               f"{self.source('supabase.key')}; migrate, deploy and creds need SUPABASE_DB_URL",
                               None if self.get("supabase.key") else "supabase.key (SUPABASE_KEY) is not set: the "
                               "REST API cannot be used without the project's service_role key",
                               key="supabase.url" if url_from.startswith("supabase.url") else "store.url")
        return StoreChoice("sqlite", f"sqlite:///{self.elf_dir / 'elf.db'}", "default: no store.url is set",
                           "supabase.key is set without supabase.url (SUPABASE_URL): not used"
                           if self.get("supabase.key") else None)

    def shown(self, key: str) -> str:
        """The value as it may be printed: secrets masked, URL passwords removed."""
        value = self.store_url if key == "store.url" else self.get(key)
        if SCHEMA[key].secret and value:
            return MASK
        return redact_url(value) if isinstance(value, str) else value

    def source(self, key: str) -> str:
        if key == "store.url" and "store.url" not in self.sources:
            choice = self.store_choice()
            return "default (.elf/elf.db under the project root)" if choice.kind == "sqlite" else \
                f"not set: {choice.key} from {self.source(choice.key)}"
        return self.sources.get(key, "default")


def _did_you_mean(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(options))}"


def _number(raw: Any, want: type) -> int | float | None:
    """raw as a finite int or float (an int key takes no fraction), else None."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        try:
            raw = float(raw) if want is float else int(raw.strip())
        except ValueError:
            return None
    if isinstance(raw, float) and (not math.isfinite(raw) or (want is int and not raw.is_integer())):
        return None
    return want(raw) if isinstance(raw, (int, float)) else None


def _in_range(key: str, value: int | float, where: str) -> int | float:
    lo, hi = SCHEMA[key].lo, SCHEMA[key].hi
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(
            f"{where}: '{key}' must be from {lo:g} to {hi:g}, got {value:g}",
            hint=f"set {key} to a value in {lo:g}..{hi:g}",
        )
    return value


def _coerce(key: str, raw: Any, where: str) -> Any:
    want = SCHEMA[key].type
    if want is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw.lower() in ("1", "true", "yes", "on")
    elif want in (int, float):
        number = _number(raw, want)
        if number is not None:
            return _in_range(key, number, where)
    elif want is str and isinstance(raw, str):
        return raw
    elif want is list:  # a list of names: a TOML array of strings, or "a,b" from the environment
        items = [x.strip() for x in raw.split(",") if x.strip()] if isinstance(raw, str) else raw
        if isinstance(items, list) and all(isinstance(x, str) for x in items):
            return list(items)
    spec = SCHEMA[key]
    kind = "a whole number" if want is int else "a finite number"
    what = want.__name__ if spec.lo is None else f"{kind} from {spec.lo:g} to {spec.hi:g}"
    what = "a list of strings, e.g. [\"a\", \"b\"]" if want is list else what
    raise ConfigError(f"{where}: '{key}' must be {what}, got {raw!r}", hint=f"set {key} to {what}")


def _flatten(table: dict, path: Path, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            if key == "profiles":
                continue
            out.update(_flatten(value, path, key + "."))
        else:
            if key not in SCHEMA:
                raise ConfigError(
                    f"{path}: unknown key '{key}'",
                    hint=f"{_did_you_mean(key, list(SCHEMA))} Remove or rename it.",
                )
            out[key] = value
    return out


def read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML ({exc})",
            hint="fix the line named above, or move the file away and run `elfctl init`",
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})", hint="check its permissions") from None


def load(
    cwd: Path | None = None,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    environ = os.environ if environ is None else environ
    root, file = find_root(cwd)
    profile = profile or environ.get("ELFCTL_PROFILE") or None
    cfg = Config(root=root, file=file, profile=profile)

    def put(key: str, raw: Any, source: str) -> None:
        cfg.values[key] = _coerce(key, raw, source)
        cfg.sources[key] = source

    doc = read_toml(file) if file else {}
    if file:
        for key, raw in _flatten(doc, file).items():
            put(key, raw, str(file))
    if profile:
        profiles = doc.get("profiles", {}) if isinstance(doc.get("profiles"), dict) else {}
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            raise ConfigError(
                f"{file or CONFIG_FILE}: no [profiles.{profile}] table (profiles: {known})",
                hint=f"add a [profiles.{profile}] table or choose one of the defined profiles",
            )
        for key, raw in _flatten(profiles[profile], file).items():
            put(key, raw, f"{file} [profiles.{profile}]")
    for key in SCHEMA:
        var = env_name(key)
        if var in environ:
            put(key, environ[var], f"env {var}")
    for var, key in ENV_ALIASES.items():
        if var in environ and env_name(key) not in environ:
            put(key, environ[var], f"env {var}")
    for key, raw in (overrides or {}).items():
        if raw is not None:
            put(key, raw, "flag")
    return cfg
