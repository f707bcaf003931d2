"""The `gateway` step of `infra up` (and its part of `infra down`): the LLM gateway as the platform's
own service, so every team reaches it by one name.

Docker: a container `<prefix>-gateway` (alias `elfctl-gateway`) on the platform network, restarted
unless stopped, health-checked by its image's HEALTHCHECK, its port published on 127.0.0.1 for the
operator. Kubernetes: a Deployment (gateway.replicas, 2 by default) and a Service `elfctl-gateway`.
Both are left alone when the image and the settings are the same (a hash of both in a label).

What the gateway gets, decided here once for both targets:
- the store: SQLite is the project's .elf/ bind-mounted (read-write) with the project read-only
  beside it (team.yaml, elfctl.toml, prices); a cluster gateway needs Postgres or Supabase, and on
  Docker a Postgres or Supabase URL must name an address the container reaches (not 127.0.0.1, which
  is the container); Supabase's REST API: SUPABASE_URL, and SUPABASE_KEY as a secret;
- provider keys: read here from the environment, else the credential store (global keys), and
  handed to the gateway only (as env on Docker, a Secret on Kubernetes). The gateway is the
  platform's own process: no team container ever receives them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from elfctl.errors import ElfError, InputError, OperationFailed
from elfctl.services.deploy.gateway_env import NAME as ALIAS  # teams' OPENAI_BASE_URL names it

SETTINGS = "elfctl.settings"  # label: hash of the image and every setting the container runs with
PROJECT = "/project"  # where the project is mounted in the container (the image's WORKDIR)
LOOPBACK = ("127.", "localhost", "::1", "[::1]", "0.0.0.0")


@dataclass
class Gateway:
    """Everything the gateway runs with; `secret_env` values never reach output or labels."""

    container: str
    network: str
    port: int
    publish_address: str
    env: dict[str, str] = field(default_factory=dict)
    secret_env: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)  # host path -> container path, read-write
    read_only: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    replicas: int = 2  # Kubernetes
    notes: list[str] = field(default_factory=list)  # said once in the step's details

    def settings_hash(self, image: str) -> str:
        doc = {"image": image, "env": self.env, "secret": sorted(self.secret_env.items()),
               "volumes": self.volumes, "ro": self.read_only, "user": self.user, "port": self.port,
               "publish": self.publish_address, "network": self.network}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def store_access(store_url: str, root: Path, elf_dir: Path, target: str, rest_key: str = "",
                 ca_file: Path | None = None) -> tuple[dict, dict, dict, list[str]]:
    """(plain env, secret env, read-write volumes) through which the gateway reaches the store, and
    notes. SQLite: the database's folder mounted; Postgres: its URL (a secret: it may hold a password);
    Supabase's REST API: SUPABASE_URL, and SUPABASE_KEY as a secret (`rest_key`, supabase.key)."""
    scheme = store_url.split(":", 1)[0].lower()
    if scheme in ("supabase+https", "supabase+http"):
        return _rest_access(store_url[len("supabase+"):], root, elf_dir, target, rest_key, ca_file)
    if scheme == "sqlite":
        if target == "kubernetes":
            raise _needs_postgres()
        db = Path(store_url.split("sqlite:///", 1)[-1]) if store_url.startswith("sqlite:///") else None
        db = db if db is None or db.is_absolute() else root / db
        if db is None or db.parent.resolve() != elf_dir.resolve():
            raise InputError(f"store.url {store_url!r}: the gateway container mounts the project's .elf/ and "
                             "finds no database there", hint=f"keep the SQLite store in {elf_dir} (the default), "
                             "or use Postgres, or `--skip gateway`")
        return ({"ELFCTL_STORE_URL": f"sqlite:///{PROJECT}/.elf/{db.name}"}, {},
                {str(elf_dir): f"{PROJECT}/.elf"}, [f"store: {elf_dir} mounted"])
    if scheme in ("postgresql", "postgres"):
        from urllib.parse import urlsplit

        host = urlsplit(store_url).hostname or ""
        if target == "docker" and (not host or host.startswith(LOOPBACK) or host == "localhost"):
            raise InputError(
                f"store.url names {host or 'a local socket'}: inside the gateway container that is the "
                "container itself, so it cannot reach this store",
                hint="give the database's address on the Docker network (e.g. the host's bridge address, "
                "with Postgres listening there), or `elfctl infra up --skip gateway`")
        return {}, {"ELFCTL_STORE_URL": store_url}, _spool_volume(elf_dir, target), ["store: Postgres (URL as a secret)"]
    raise InputError(f"store.url scheme {scheme!r}: the gateway runs on SQLite, Postgres or Supabase",
                     hint="use the default SQLite store, a postgresql:// URL or supabase+https://, or `--skip gateway`")


def _rest_access(url: str, root: Path, elf_dir: Path, target: str, key: str, ca_file: Path | None
                 ) -> tuple[dict, dict, dict, list[str]]:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    if target == "docker" and (host.startswith(LOOPBACK) or host == "localhost"):
        raise InputError(
            f"SUPABASE_URL names {host}: inside the gateway container that is the container itself, so it "
            "cannot reach the REST API", hint="give the API's address the container reaches (the project's "
            "https://<ref>.supabase.co, or this host's bridge address), or `elfctl infra up --skip gateway`")
    env, notes = {"SUPABASE_URL": url}, [f"store: Supabase REST API at {url} (SUPABASE_KEY as a secret)"]
    if ca_file is not None:  # read by the gateway from the project, which the container mounts at PROJECT
        try:
            inside = ca_file.resolve().relative_to(root.resolve())
        except ValueError:
            inside = None
        if target != "docker" or inside is None:
            raise InputError(f"supabase.ca_file {str(ca_file)!r}: the gateway " + (
                "on Kubernetes has no copy of it" if target != "docker" else "container sees only the project folder"),
                hint="keep the CA file inside the project (Docker), or use a certificate the system trusts")
        env["ELFCTL_SUPABASE_CA_FILE"] = f"{PROJECT}/{inside.as_posix()}"
    return env, {"SUPABASE_KEY": key}, _spool_volume(elf_dir, target), notes


def _spool_volume(elf_dir: Path, target: str) -> dict[str, str]:
    """The project's .elf/ read-write on Docker, where the call path keeps its spool (.elf/spool: a row
    is written there before the store, and replayed at the next start if the process was killed): the
    rest of the project is mounted read-only."""
    return {str(elf_dir): f"{PROJECT}/.elf"} if target == "docker" else {}


def _needs_postgres() -> InputError:
    return InputError("a gateway on Kubernetes needs a Postgres store: its replicas share one ledger, "
                      "and the store is SQLite (a file on this machine)",
                      hint="set store.url (or ELFCTL_STORE_URL) to postgresql://..., or SUPABASE_URL and "
                      "SUPABASE_KEY (a Supabase project), or `elfctl infra up --skip gateway`")


# --- Docker -------------------------------------------------------------------------------------------


def docker_step(engine, gw: Gateway, image: Callable[[], tuple[bool, str, str]],
                labels: dict[str, str], wait_s: float = 120.0) -> tuple[bool, str]:
    """Build the image when needed, then run (or leave alone) the gateway container and wait until
    Docker reports it healthy. image() -> (changed, details, ref)."""
    made, img_details, ref = image()
    notes = [img_details] if made else []
    want = gw.settings_hash(ref)
    found = engine.inspect(gw.container)
    if found is not None and (found["Config"].get("Labels") or {}).get(SETTINGS) == want:
        state = found["State"]
        if state.get("Running") and not state.get("Restarting"):
            health = (state.get("Health") or {}).get("Status")
            if health in (None, "healthy"):
                return bool(notes), "; ".join([*notes, f"{gw.container} running, unchanged ({ref})"])
        else:
            engine.start(gw.container)
            notes.append(f"started {gw.container} again")
            _wait_healthy(engine, gw.container, wait_s)
            return True, "; ".join(notes)
    if found is not None:
        engine.remove(gw.container, grace_s=5)
        notes.append(f"replaced {gw.container} (image or settings changed)")
    engine.ensure_network(gw.network, labels)
    engine.run(gw.container, ref, network=gw.network, labels={**labels, "elfctl.role": "gateway", SETTINGS: want},
               env={**gw.env, **gw.secret_env}, ports={gw.port: (gw.publish_address, gw.port)},
               volumes=gw.volumes, read_only=gw.read_only, user=gw.user, aliases=[ALIAS])
    _wait_healthy(engine, gw.container, wait_s)
    notes.append(f"started {gw.container} ({ref}) at http://{gw.publish_address}:{gw.port}, "
                 f"http://{ALIAS}:{gw.port} for teams")
    return True, "; ".join([*notes, *gw.notes])


def _wait_healthy(engine, name: str, wait_s: float) -> None:
    """Until the image's HEALTHCHECK passes; a container that exits or stays unhealthy fails the
    step with its last log lines."""
    deadline = time.monotonic() + wait_s
    while True:
        found = engine.inspect(name)
        state = (found or {}).get("State") or {}
        health = (state.get("Health") or {}).get("Status")
        if health == "healthy":
            return
        if found is None or health == "unhealthy" or time.monotonic() > deadline or (
                not state.get("Running") and state.get("Status") in ("exited", "dead")):
            try:
                tail = "\n".join(list(engine.logs(name, tail=15)))
            except ElfError:
                tail = ""
            why = f"health {health or state.get('Status', 'unknown')}" + (
                f", exit code {state.get('ExitCode')}" if not state.get("Running") else "")
            raise OperationFailed(f"gateway container {name} did not become healthy ({why})"
                                  + (f":\n{tail}" if tail else ""),
                                  hint=f"`docker logs {name}`; fix and run `elfctl infra up` again")
        time.sleep(0.5)


def docker_down(engine, container: str) -> bool:
    return engine.remove(container, grace_s=5)


def remove_images(engine, repo: str) -> list[str]:
    removed = []
    for img in engine.images(label="elfctl.role=gateway"):
        for ref in img.get("RepoTags") or []:
            if ref.startswith(repo + ":") and engine.remove_image(ref):
                removed.append(f"image {ref}")
    return removed


# --- settings from the run's configuration --------------------------------------------------------------


def plain_env(values: dict[str, object], port: int) -> dict[str, str]:
    """The effective llm.*, gateway.* and discovery.* settings, so the gateway in the container runs with the
    settings this `infra up` ran with, wherever they came from (file, profile, ELFCTL_* env)."""
    env = {f"ELFCTL_{k.replace('.', '_').upper()}": _text(v) for k, v in sorted(values.items())}
    env.update({"ELFCTL_GATEWAY_HOST": "0.0.0.0", "ELFCTL_GATEWAY_PORT": str(port), "HOME": "/tmp"})
    return env


def _text(v: object) -> str:
    return ("true" if v else "false") if isinstance(v, bool) else str(v)


def provider_env(providers: list[str], key_for: Callable[[str], str | None],
                 env: dict[str, str]) -> tuple[dict, list[tuple[str, str]]]:
    """Each named provider's key (environment, else the credential store) and its base URL
    variables when set here: ({VAR: value}, [(provider, key variable)] of those without a key)."""
    from elfctl.domain.llm_providers import KEYLESS, key_var

    out, keyless = {}, []
    for p in providers:
        var = key_var(p)
        value = key_for(p)
        if value:
            out[var] = value
        elif p not in KEYLESS:
            keyless.append((p, var))
        stem = var.removesuffix("_API_KEY")
        for base in (f"{stem}_API_BASE", f"{stem}_BASE_URL"):
            if env.get(base):
                out[base] = env[base]
    return out, keyless


# --- Kubernetes -----------------------------------------------------------------------------------------

SECRET = f"{ALIAS}-secrets"  # the store URL and provider keys, by reference from the Deployment


def kubernetes_objects(gw: Gateway, namespace: str, image: str, secret_id: str = "",
                       pull_secret: str | None = None) -> list[dict]:
    """The gateway's Service and Deployment (pure data). Values of `secret_env` are never in them:
    the pods read them from the Secret SECRET by reference."""
    from elfctl.domain import k8s_manifests as m

    labels = {**m.selector(ALIAS), "app.kubernetes.io/component": "llm-gateway"}
    meta = {"name": ALIAS, "namespace": namespace, "labels": labels}
    probe = {"httpGet": {"path": "/health", "port": "http"}, "timeoutSeconds": 2}
    container = {
        "name": "gateway", "image": image, "imagePullPolicy": "IfNotPresent", "args": ["gateway", "serve"],
        "ports": [{"name": "http", "containerPort": gw.port, "protocol": "TCP"}],
        "env": [{"name": k, "value": v} for k, v in sorted(gw.env.items())],
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 60},
        "readinessProbe": {**probe, "periodSeconds": 2, "failureThreshold": 2},
        "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 3},
    }
    if gw.secret_env:
        container["envFrom"] = [{"secretRef": {"name": SECRET}}]
    pod: dict = {"containers": [container]}
    if pull_secret:
        pod["imagePullSecrets"] = [{"name": pull_secret}]
    template_meta: dict = {"labels": labels}
    if secret_id:  # a new Secret content restarts the pods (env is read at start)
        template_meta["annotations"] = {m.SECRET_ID: secret_id}
    objects = [
        {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta),
         "spec": {"type": "ClusterIP", "selector": m.selector(ALIAS),
                  "ports": [{"name": "http", "port": gw.port, "targetPort": "http", "protocol": "TCP"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(meta),
         "spec": {"replicas": gw.replicas, "selector": {"matchLabels": m.selector(ALIAS)},
                  "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                  "template": {"metadata": template_meta, "spec": pod}}},
    ]
    for obj in objects:
        obj["metadata"] = {**obj["metadata"], "annotations": {m.HASH: m.content_hash(obj)}}
    return objects


def kubernetes_step(target, gw: Gateway, image: Callable[[], tuple[bool, str, str]]) -> tuple[bool, str]:
    """Secret, Service and Deployment in the environment's namespace, each written only when it
    changed. Needs a Postgres store (checked before: store_access). image() -> (changed, details, ref)."""
    from elfctl.domain import k8s_manifests as m

    made, img_details, ref = image()
    notes = [img_details] if made else []
    secret_id = ""
    if gw.secret_env:
        written, secret_id = target.ensure_secret(SECRET, gw.secret_env)
        if written:
            notes.append(f"Secret {SECRET} written (keys {', '.join(sorted(gw.secret_env))})")
    objects = kubernetes_objects(gw, target.namespace, ref, secret_id, target.pull_secret if target.registry else None)
    target.validate(objects)
    for obj in objects:
        live = target.cluster.get(obj["kind"], ALIAS, target.namespace)
        if live is not None and (live["metadata"].get("annotations") or {}).get(m.HASH) == obj["metadata"]["annotations"][m.HASH]:
            continue
        target.cluster.apply(obj)
        notes.append(f"{obj['kind']} {ALIAS} {'updated' if live is not None else 'created'}")
    if not notes:
        return False, f"Deployment {ALIAS} ({gw.replicas} replicas) and Service {ALIAS} unchanged ({ref})"
    notes.append(f"teams reach it at http://{ALIAS}.{target.namespace}.svc:{gw.port}/v1")
    return True, "; ".join([*notes, *gw.notes])


def kubernetes_down(target) -> bool:
    """Remove the gateway's Deployment, Service and Secret; True when it was running."""
    running = target.cluster.delete("Deployment", ALIAS, target.namespace)
    target.cluster.delete("Service", ALIAS, target.namespace)
    target.cluster.delete("Secret", SECRET, target.namespace)
    return running
