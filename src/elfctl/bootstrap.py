"""Composition root: the one place that turns configuration into concrete adapters.

Services receive what this builds; nothing else constructs clients. Imports of adapters happen
inside the functions, so building an App costs nothing until an adapter is used.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from elfctl.config import Config
from elfctl.errors import InputError
from elfctl.ports import Store
from elfctl.redact import redact_url

STORE_SCHEMES = ("sqlite", "postgresql", "postgres", "supabase+https")


def open_store(cfg: Config, url: str | None = None) -> Store:
    """The store `url` names, else the one the configuration chooses (Config.store_choice)."""
    if url is None:
        choice = cfg.store_choice()
        if choice.key == "supabase.db_url":  # a Supabase project's database
            return _postgres_store(cfg, choice.url, _named(cfg, "supabase.db_url", "SUPABASE_DB_URL"))
        if choice.key == "supabase.url":
            return _rest_store(cfg, choice.url, _named(cfg, "supabase.url", "SUPABASE_URL"))
        url = choice.url
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("supabase+https", "supabase+http"):
        return _rest_store(cfg, url[len("supabase+"):], f"store.url (from {cfg.source('store.url')})")
    if scheme == "sqlite":
        from elfctl.adapters.sqlite import SqliteStore

        raw = unquote(urlsplit(url).path) if url.startswith("sqlite://") else url[len("sqlite:") :]
        if not raw or raw == "/":
            raise InputError(f"store.url {url!r} names no database file", hint="use sqlite:///path/to/elf.db")
        # sqlite:///rel/path -> "/rel/path" from urlsplit; sqlite:////abs -> "//abs". SQLAlchemy's rule.
        path = Path(raw[1:]) if raw.startswith("/") else Path(raw)
        if not path.is_absolute():
            path = cfg.root / path
        return SqliteStore(path, busy_timeout_ms=cfg.get("store.busy_timeout_ms"))
    if scheme in ("postgresql", "postgres"):
        return _postgres_store(cfg, url, f"store.url (from {cfg.source('store.url')})")
    where = cfg.source("store.url")
    raise InputError(
        f"store.url {redact_url(url)!r} (from {where}): unknown store scheme '{scheme or url}'",
        hint="use sqlite:///path/to/elf.db, postgresql://user:password@host:port/db or "
             "supabase+https://<project-ref>.supabase.co",
    )


def _postgres_store(cfg: Config, url: str, setting: str) -> Store:
    from elfctl.adapters.postgres import POOLERS, PostgresStore

    pooler = cfg.get("store.pooler")
    if pooler not in POOLERS:
        raise InputError(f"store.pooler {pooler!r} (from {cfg.source('store.pooler')}) is not a pooler mode",
                         hint=f"use one of {', '.join(POOLERS)}")
    return PostgresStore(url, setting=setting, pooler=pooler)


def _rest_store(cfg: Config, url: str, url_setting: str) -> Store:
    from elfctl.adapters.supabase_rest import RestStore

    return RestStore(url, cfg.get("supabase.key"), timeout_s=cfg.get("supabase.timeout_s"), url_setting=url_setting,
                     max_rows=cfg.get("supabase.max_rows"),
                     key_setting=_named(cfg, "supabase.key", "SUPABASE_KEY"),
                     ca_file=str(cfg.path("supabase.ca_file")) if cfg.get("supabase.ca_file") else None)


def _named(cfg: Config, key: str, var: str) -> str:
    """How errors name a setting: its environment variable when it came from there (SUPABASE_KEY), else
    the key and its source."""
    source = cfg.source(key)
    return var if source == f"env {var}" else f"{key} (from {source})"


def migrations_dir(cfg: Config) -> Path:
    configured = cfg.get("store.migrations_dir")
    if configured:
        return cfg.path("store.migrations_dir")
    here = Path(__file__).resolve().parent
    shipped = here / "migrations"  # inside an installed wheel
    return shipped if shipped.is_dir() else here.parents[1] / "migrations"  # source checkout


def docker_engine(cfg: Config):
    from elfctl.adapters.docker_engine import DockerEngine

    return DockerEngine(cfg.get("docker.host") or None, timeout_s=cfg.get("docker.timeout_s"),
                        build_timeout_s=cfg.get("docker.build_timeout_s"),
                        setting=f"docker.host (from {cfg.source('docker.host')})")


def registry_address(cfg: Config) -> str:
    return cfg.get("registry.url") or f"127.0.0.1:{cfg.get('registry.port')}"


def registry(cfg: Config):
    from elfctl.adapters.registry import Registry

    return Registry(registry_address(cfg), timeout_s=cfg.get("registry.timeout_s"))


def deploy_target(cfg: Config, engine):
    """The Docker target (the Kubernetes one, which needs no engine, is kubernetes_target)."""
    target = cfg.get("deploy.target")
    if target == "docker":
        from elfctl.adapters.docker_target import DockerTarget
        from elfctl.adapters.secret_files import SecretFiles

        return DockerTarget(engine, network=cfg.get("deploy.network"), prefix=cfg.get("deploy.prefix"),
                            base_image=cfg.get("deploy.base_image"),
                            publish_address=cfg.get("deploy.publish_address"),
                            stop_grace_s=cfg.get("deploy.stop_grace_s"),
                            secret_files=SecretFiles(Path(cfg.get("deploy.secrets_dir")),
                                                     f"deploy.secrets_dir (from {cfg.source('deploy.secrets_dir')})"))
    raise InputError(f"deploy.target {target!r} (from {cfg.source('deploy.target')}): not available here",
                     hint="use deploy.target = \"docker\" or \"kubernetes\"")


def open_secrets(cfg: Config, backend: str, prompt=None):
    """The credential backend named `backend` ("keyring" | "file"). `prompt(new_file)` asks for
    the file passphrase when neither ELFCTL_MASTER_KEY nor the OS keyring provides one."""
    if backend == "keyring":
        from elfctl.adapters.keyring_backend import KeyringBackend, usable

        ok, why = usable()
        if not ok:
            raise InputError(f"credential backend 'keyring': {why}",
                             hint='start the Secret Service (gnome-keyring), or set creds.backend = "file"')
        return KeyringBackend(keyring_service(cfg))
    if backend == "file":
        from elfctl.adapters.encrypted_file import EncryptedFile

        return EncryptedFile(credential_file(cfg), _passphrase_source(cfg, prompt))
    raise InputError(f"creds.backend {backend!r} (from {cfg.source('creds.backend')}) is not a backend",
                     hint="use auto, keyring or file")


def default_secrets_backend(cfg: Config) -> str:
    """The backend new credentials go to: creds.backend, or for auto the OS keyring when usable."""
    choice = cfg.get("creds.backend")
    if choice != "auto":
        return choice
    from elfctl.adapters.keyring_backend import usable

    return "keyring" if usable()[0] else "file"


def credential_file(cfg: Config) -> Path:
    return cfg.path("creds.file")


def start_credential_key(cfg: Config) -> None:
    """For a command about to read credential values: start deriving the credential file's key now,
    beside the rest of start-up, when the file exists and ELFCTL_MASTER_KEY holds its passphrase."""
    import os

    passphrase = os.environ.get("ELFCTL_MASTER_KEY", "")
    path = credential_file(cfg)
    if passphrase and path.is_file():
        from elfctl.adapters.encrypted_file import start_deriving

        start_deriving(path, passphrase)


def keyring_service(cfg: Config) -> str:
    import hashlib

    return cfg.get("creds.keyring_service") or \
        "elfctl:" + hashlib.sha256(str(cfg.root).encode()).hexdigest()[:16]


def _passphrase_source(cfg: Config, prompt):
    import os

    from elfctl.redact import register_secret

    got: list[str] = []

    def passphrase(new_file: bool) -> str:
        if got:
            return got[0]
        value = os.environ.get("ELFCTL_MASTER_KEY", "")
        if not value:
            from elfctl.adapters.keyring_backend import KeyringBackend, usable

            if usable()[0]:
                value = KeyringBackend(keyring_service(cfg)).file_passphrase() or ""
        if not value and prompt is not None:
            value = prompt(new_file) or ""
        if not value:
            raise InputError("no passphrase for the encrypted credential file",
                             hint="set ELFCTL_MASTER_KEY, or run in a terminal to be asked for it")
        register_secret(value)
        got.append(value)
        return value

    return passphrase


def kubernetes_target(cfg: Config, teams=list, secret_values=None, progress=None):
    """The Kubernetes deploy target for this configuration (kubeconfig/context as kubectl).
    `teams()` lists the TeamSpecs whose Secrets `prepare` writes; `secret_values(spec)` is the
    project's one source of their values (the credential store, then the environment)."""
    import os

    from elfctl.adapters.kubernetes import KubeCluster
    from elfctl.adapters.kubernetes_target import KubernetesTarget
    from elfctl.services.deploy.k8s import kubernetes_namespace

    cluster = KubeCluster(cfg.get("kubernetes.kubeconfig") or None, cfg.get("kubernetes.context") or None,
                          cfg.get("kubernetes.request_timeout_s"))
    user, pw = os.environ.get("ELFCTL_REGISTRY_USERNAME"), os.environ.get("ELFCTL_REGISTRY_PASSWORD")
    extra = {"secret_values": secret_values} if secret_values is not None else {}
    return KubernetesTarget(cluster, kubernetes_namespace(cfg), cfg.profile or "default", teams,
                            registry=cfg.get("kubernetes.registry") or cfg.get("registry.url"),
                            pull_secret=cfg.get("kubernetes.pull_secret"), poll_s=cfg.get("kubernetes.poll_s"),
                            restore_timeout_s=cfg.get("kubernetes.restore_timeout_s"), progress=progress,
                            pull_auth=(user, pw) if user and pw else None, **extra)


def vault(cfg: Config, store: Store, teams_dir: Path | None, command: str, prompt=None):
    """The credentials service's Vault: metadata in `store`, values in the backend each credential
    names (opened on first use), audited as `command`. `prompt(new_file)` as for open_secrets."""
    import getpass
    import os
    import socket

    from elfctl.domain import credentials as rules
    from elfctl.services.credentials import audit
    from elfctl.services.credentials.vault import Vault

    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 (no passwd entry in some containers)
        user = str(os.getuid())
    max_age = cfg.get("creds.max_age")
    chosen: list[str] = []

    def default_backend() -> str:
        if not chosen:
            chosen.append(default_secrets_backend(cfg))
        return chosen[0]

    return Vault(
        store,
        lambda name: open_secrets(cfg, name, prompt),
        default_backend,
        grace=rules.parse_duration(cfg.get("creds.grace_period"), "creds.grace_period"),
        max_age=rules.parse_duration(max_age, "creds.max_age") if max_age else None,
        warn_before=rules.parse_duration(cfg.get("creds.warn_before"), "creds.warn_before"),
        actor=audit.Actor(user, socket.gethostname(), command),
        teams_dir=teams_dir,
        lock_timeout_s=cfg.get("store.lock_timeout_s"),
    )


def price_book(cfg: Config):
    """litellm's price map plus the project's overrides (llm.prices_file), read once per change."""
    from elfctl.adapters import price_files

    return price_files.load(cfg.path("llm.prices_file"))


def provider_keys(cfg: Config, store: Store):
    """Provider API keys for LLM calls: the environment, else the credential store (read once)."""
    from elfctl.services.llm.app import teams_dir
    from elfctl.services.llm.keys import ProviderKeys

    return ProviderKeys(store, lambda command: vault(cfg, store, teams_dir(cfg), command))


def llm_caller(cfg: Config, store: Store, warn=None):
    """The LLM call path (elfctl.llm, `llm test`): prices, litellm, the spool, breakers, keys."""
    from elfctl.adapters import litellm_client
    from elfctl.services.gateway.quota import Watched
    from elfctl.services.llm import app as llm_app
    from elfctl.services.llm.call import Caller

    return Caller(store, price_book(cfg), Watched(litellm_client, cfg, store), llm_app.spool(cfg), llm_app.settings(cfg),
                  warn=warn, key_for=provider_keys(cfg, store), trace=telemetry(cfg, store))


def webhook_poster():
    """`post(url, body, headers, timeout) -> Posted` for the alert sender."""
    from elfctl.adapters.webhook_http import post

    return post


def gateway_caller(cfg: Config, store: Store, warn=None):
    """The gateway's call path: the same Caller as elfctl.llm (budgets, chain, breakers, retries,
    spool, writer), with OpenAI-protocol models forwarded over HTTP as they are (the provider at
    OPENAI_BASE_URL, else api.openai.com) and the others through litellm."""
    import os

    from elfctl.adapters import litellm_client, openai_http
    from elfctl.services.gateway.quota import Watched
    from elfctl.services.llm import app as llm_app
    from elfctl.services.llm.call import Caller

    base = os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE")
    client = Watched(openai_http.Routed(openai_http.Client(base), litellm_client), cfg, store)  # rate limits kept
    return Caller(store, price_book(cfg), client, llm_app.spool(cfg), llm_app.settings(cfg), warn=warn,
                  key_for=provider_keys(cfg, store), trace=telemetry(cfg, store))


_pipelines: dict = {}  # one exporter (queue, thread, connection) per process and telemetry settings


def telemetry(cfg: Config, store: Store | None = None, actor: str = "elfctl"):
    """The telemetry hooks for LLM calls and deploys: services.telemetry.hooks.OFF unless telemetry is
    configured (then nothing from opentelemetry is imported). Dropped spans are reported into `store`."""
    from elfctl.services.telemetry import settings as tel

    s = tel.from_config(cfg)
    if not s.enabled:
        from elfctl.services.telemetry.hooks import OFF

        return OFF
    hooks = _pipelines.get(s)
    if hooks is None:
        import atexit

        from elfctl.adapters.otel import Pipeline
        from elfctl.services.telemetry.drops import DropReporter
        from elfctl.services.telemetry.genai import Telemetry

        pipeline = Pipeline(s.service_name, s.endpoint)
        hooks = _pipelines[s] = Telemetry(pipeline, s.capture_content)
        hooks.drops = DropReporter(pipeline, actor)
        atexit.register(hooks.drops.report)  # runs after close (last in, first out): spans left behind count
        atexit.register(pipeline.close)
    if store is not None:
        hooks.drops.watch(store)
    return hooks
