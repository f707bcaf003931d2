"""The Docker engine through docker-py: the operations the deploy target and `infra up` need.

Every call has a hard timeout (the client's socket timeout; builds and pushes get their own, longer
one) and every SDK or transport error becomes an ElfError here, so nothing above sees docker types.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from elfctl.adapters.docker_retire import retire_later
from elfctl.adapters.dockerfile_labels import labelled_dockerfile
from elfctl.errors import ElfError, InputError, OperationFailed, Unreachable

INSTALL_HINT = (
    "install Docker (Debian/Ubuntu: `sudo apt-get install docker.io`) and start it "
    "(`sudo systemctl start docker`, or run `sudo dockerd &`); set docker.host or DOCKER_HOST "
    "if the engine listens elsewhere"
)


def _host_label(base_url: str | None) -> str:
    return base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class DockerEngine:
    def __init__(self, base_url: str | None = None, timeout_s: float = 10.0, build_timeout_s: float = 300.0,
                 setting: str = "docker.host"):
        """`setting` names where base_url came from in errors, e.g. "docker.host (from elfctl.toml)"."""
        self.base_url = base_url or None
        self.setting = setting if self.base_url else "DOCKER_HOST (environment)"
        self.timeout_s = timeout_s
        self.build_timeout_s = build_timeout_s
        self._api = None
        self._slow = None

    # --- clients and error translation -----------------------------------------------------------

    def _client(self, timeout: float):
        import docker

        kwargs = {"timeout": timeout, "version": "auto"}
        self._check_host()
        with self._errors("connect"):
            if self.base_url:
                return docker.APIClient(base_url=self.base_url, **kwargs)
            return docker.from_env(**kwargs).api

    def _check_host(self) -> None:
        """A malformed address is the user's input (exit 2), not an unreachable engine: docker-py
        raises ValueError or DockerException for it while building the client."""
        import docker.errors
        import docker.utils

        host = self.base_url or os.environ.get("DOCKER_HOST")
        if not host:
            return
        try:
            docker.utils.parse_host(host, os.name == "nt", tls=False)
        except (ValueError, docker.errors.DockerException) as exc:
            raise InputError(f"{self.setting} {host!r} is not a Docker engine address: {exc}",
                             hint="use unix:///var/run/docker.sock, tcp://HOST:PORT (port 1-65535) "
                                  "or ssh://USER@HOST") from None

    @property
    def api(self):
        if self._api is None:
            self._api = self._client(self.timeout_s)
        return self._api

    @property
    def slow(self):
        if self._slow is None:
            self._slow = self._client(self.build_timeout_s)
        return self._slow

    @contextmanager
    def _errors(self, what: str):
        import docker.errors
        import requests.exceptions

        try:
            yield
        except ElfError:
            raise
        except docker.errors.NotFound as exc:
            raise NotFoundError(f"docker {what}: {_explain(exc)}", hint="check the name") from None
        except (requests.exceptions.Timeout, TimeoutError) as exc:
            raise Unreachable(
                f"Docker engine at {_host_label(self.base_url)}: {what} got no answer in time "
                f"({type(exc).__name__})",
                hint="the engine is overloaded or hung; check `docker info`, raise docker.timeout_s",
            ) from None
        except docker.errors.APIError as exc:
            if exc.status_code and exc.status_code >= 500 and "connection refused" in str(exc).lower():
                raise Unreachable(
                    f"docker {what}: {_explain(exc)}",
                    hint="is the registry running? `elfctl infra up` starts it",
                ) from None
            raise OperationFailed(
                f"docker {what}: {_explain(exc)}", hint="see the message from the engine"
            ) from None
        except (
            docker.errors.DockerException,
            requests.exceptions.ConnectionError,
            ConnectionError,
            FileNotFoundError,
        ) as exc:
            missing = (
                "" if shutil.which("dockerd") or shutil.which("docker") else " (Docker is not installed)"
            )
            raise Unreachable(
                f"Docker engine not reachable at {_host_label(self.base_url)}{missing}: {_explain(exc)}",
                hint=INSTALL_HINT,
            ) from None

    def close(self) -> None:
        for c in (self._api, self._slow):
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass

    # --- engine -----------------------------------------------------------------------------------

    def ping(self) -> str:
        """The engine's version; Unreachable when it does not answer."""
        with self._errors("ping"):
            return self.api.version().get("Version", "?")

    def info(self) -> dict[str, Any]:
        """`docker info`: DockerRootDir, NCPU, MemTotal, CgroupVersion ..."""
        local = self._socket()
        if local:
            return self._get(local, "info", "/info")
        with self._errors("info"):
            return self.api.info()

    # Reads on a local engine go over its unix socket without docker-py (adapters/docker_reads.py):
    # `resources` and `health` make them on every run, and docker-py's import alone is ~0.2 s.
    def _socket(self) -> str | None:
        if self._api is not None:  # docker-py is loaded already (a deploy): nothing to save
            return None
        from elfctl.adapters.docker_reads import socket_path

        return socket_path(self.base_url)

    def _get(self, path: str, what: str, url: str, missing_ok: bool = False) -> Any:
        from elfctl.adapters import docker_reads

        try:
            status, body = docker_reads.get(path, url, self.timeout_s)
        except TimeoutError:
            raise Unreachable(
                f"Docker engine at {_host_label(self.base_url)}: {what} got no answer in time (TimeoutError)",
                hint="the engine is overloaded or hung; check `docker info`, raise docker.timeout_s") from None
        except OSError as exc:
            missing = "" if shutil.which("dockerd") or shutil.which("docker") else " (Docker is not installed)"
            raise Unreachable(f"Docker engine not reachable at {_host_label(self.base_url)}{missing}: "
                              f"{_explain(exc)}", hint=INSTALL_HINT) from None
        if status < 300:
            return body
        message = _explain(Exception((body or {}).get("message") if isinstance(body, dict) else body))
        if status == 404:
            if missing_ok:
                return None
            raise NotFoundError(f"docker {what}: {message}", hint="check the name")
        raise OperationFailed(f"docker {what}: {status} {message}", hint="see the message from the engine")

    def disk_usage(self) -> dict[str, Any]:
        """`docker system df`: LayersSize, Images, Volumes (with UsageData), Containers."""
        with self._errors("disk usage"):
            return self.api.df()

    def stats(self, name: str, container_id: str | None = None) -> dict[str, Any] | None:
        """One sample of a container's memory and cpu counters in the shape of Docker's stats API,
        or None when it is gone. A local engine's counters are read where Docker reads them, the
        container's cgroup (well under 1 ms); the API answers in about a second (it waits for a
        second sample even when asked for one), so it is only asked for a remote engine."""
        if container_id and self._local():
            found = cgroup_stats(container_id)
            if found is not None:
                return found
        try:
            with self._errors(f"stats of {name}"):
                return self.api.stats(name, stream=False, one_shot=True)
        except NotFoundError:
            return None

    def _local(self) -> bool:
        host = self.base_url or os.environ.get("DOCKER_HOST") or ""
        return not host or host.startswith("unix://")

    # --- images -----------------------------------------------------------------------------------

    def image_id(self, ref: str) -> str | None:
        import docker.errors

        try:
            with self._errors(f"inspect image {ref}"):
                return self.api.inspect_image(ref)["Id"]
        except NotFoundError:
            return None
        except docker.errors.ImageNotFound:
            return None

    def image_labels(self, ref: str) -> dict[str, str]:
        with self._errors(f"inspect image {ref}"):
            return self.api.inspect_image(ref)["Config"].get("Labels") or {}

    def build(self, context: str, dockerfile: str, tag: str, labels: dict[str, str]) -> tuple[str, list[str]]:
        """Build and tag; returns (image id, log lines). A failing build raises with its log tail."""
        log: list[str] = []
        image_id = None
        with self._errors(f"build {tag}"), labelled_dockerfile(context, dockerfile, labels) as (dockerfile, labels):
            for chunk in self.slow.build(
                path=context,
                dockerfile=dockerfile,
                tag=tag,
                labels=labels,
                rm=True,
                forcerm=True,
                decode=True,
                pull=False,
            ):
                if "stream" in chunk:
                    log.extend(line for line in chunk["stream"].splitlines() if line.strip())
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
                if "error" in chunk:
                    tail = "\n".join(log[-10:])
                    raise BuildFailed(
                        f"docker build of {context} failed: {chunk['error'].strip()}\n{tail}",
                        hint="fix the Dockerfile; base images must exist locally "
                        "(`elfctl infra up` builds elfctl's base image)",
                    )
        return image_id or self.image_id(tag) or "", log

    def tag(self, ref: str, repository: str, tag: str) -> None:
        with self._errors(f"tag {ref}"):
            self.api.tag(ref, repository, tag, force=True)

    def push(self, repository: str, tag: str) -> str | None:
        """Push; returns the manifest digest the registry reported."""
        digest = None
        with self._errors(f"push {repository}:{tag}"):
            for chunk in self.slow.push(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    msg = chunk["error"].strip()
                    if "connection refused" in msg or "no such host" in msg or "dial tcp" in msg:
                        raise Unreachable(
                            f"registry for {repository}: {msg}",
                            hint="start it with `elfctl infra up` or fix registry.url",
                        )
                    raise OperationFailed(f"push {repository}:{tag}: {msg}", hint="check the registry")
                aux = chunk.get("aux") or {}
                digest = aux.get("Digest", digest)
        return digest

    def pull(self, repository: str, tag: str) -> None:
        with self._errors(f"pull {repository}:{tag}"):
            for chunk in self.slow.pull(repository, tag=tag, stream=True, decode=True):
                if "error" in chunk:
                    raise OperationFailed(
                        f"pull {repository}:{tag}: {chunk['error']}", hint="check the registry"
                    )

    def import_rootfs(
        self,
        files: dict[str, tuple[bytes | str, int]],
        repository: str,
        tag: str,
        changes: list[str],
        labels: dict[str, str],
    ) -> str:
        """`docker import` of a rootfs tarball built in memory. files: path -> (bytes | symlink target
        given as str, mode). Used for base images, since nothing can be pulled."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            dirs = sorted({p.rsplit("/", i)[0] for p in files for i in range(1, p.count("/") + 1)} - {""})
            for d in dirs:
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
                tar.addfile(info)
            for path, (content, mode) in sorted(files.items()):
                info = tarfile.TarInfo(path)
                info.mode = mode
                if isinstance(content, str):
                    info.type, info.linkname = tarfile.SYMTYPE, content
                    tar.addfile(info)
                else:
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
        label_changes = [f'LABEL {k}="{v}"' for k, v in labels.items()]
        with self._errors(f"import {repository}:{tag}"):
            self.slow.import_image_from_data(
                buf.getvalue(), repository=repository, tag=tag, changes=changes + label_changes
            )
        return self.image_id(f"{repository}:{tag}") or ""

    def import_tar(self, path: str, repository: str, tag: str, changes: list[str],
                   labels: dict[str, str]) -> str:
        """`docker import` of a rootfs tarball on disk (one too large to build in memory)."""
        label_changes = [f'LABEL {k}="{v}"' for k, v in labels.items()]
        with self._errors(f"import {repository}:{tag}"):
            self.slow.import_image_from_file(path, repository=repository, tag=tag,
                                             changes=changes + label_changes)
        return self.image_id(f"{repository}:{tag}") or ""

    def images(self, label: str) -> list[dict[str, Any]]:
        with self._errors("list images"):
            return self.api.images(filters={"label": label})

    def remove_image(self, ref: str) -> bool:
        try:
            with self._errors(f"remove image {ref}"):
                self.api.remove_image(ref, noprune=False)
            return True
        except (NotFoundError, OperationFailed):  # in use by a container, or gone already
            return False

    # --- containers -------------------------------------------------------------------------------

    def containers(self, labels: dict[str, str], all_: bool = True) -> list[dict[str, Any]]:
        local = self._socket()
        if local:
            from elfctl.adapters.docker_reads import containers_url

            return self._get(local, "list containers", containers_url(labels, all_))
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        with self._errors("list containers"):
            return self.api.containers(all=all_, filters=filters)

    def inspect(self, name: str) -> dict[str, Any] | None:
        local = self._socket()
        if local:
            from elfctl.adapters.docker_reads import inspect_url

            url = inspect_url(name)
            return self._get(local, f"inspect {name}", url, missing_ok=True) if url else None
        try:
            with self._errors(f"inspect {name}"):
                return self.api.inspect_container(name)
        except NotFoundError:
            return None

    def run(
        self,
        name: str,
        image: str,
        *,
        network: str,
        labels: dict[str, str],
        env: dict[str, str],
        command: list[str] | None = None,
        ports: dict[int, tuple[str, int | None]] | None = None,
        volumes: dict[str, str] | None = None,
        read_only: dict[str, str] | None = None,
        restart: bool = True,
        mem_limit: str | None = None,
        nano_cpus: int | None = None,
        aliases: list[str] | None = None,
        user: str | None = None,
    ) -> str:
        """Create and start a detached container; returns its id."""
        with self._errors(f"start container {name}"):
            host_config = self.api.create_host_config(
                port_bindings={p: b for p, b in (ports or {}).items()},
                binds={**{src: {"bind": dst, "mode": "rw"} for src, dst in (volumes or {}).items()},
                       **{src: {"bind": dst, "mode": "ro"} for src, dst in (read_only or {}).items()}},
                restart_policy={"Name": "unless-stopped"} if restart else None,
                network_mode=network,
                mem_limit=mem_limit,
                nano_cpus=nano_cpus,
                log_config={"Type": "json-file", "Config": {"max-size": "10m", "max-file": "2"}},
            )
            networking = (
                self.api.create_networking_config({network: self.api.create_endpoint_config(aliases=aliases)})
                if aliases
                else None
            )
            created = self.api.create_container(
                image,
                command=command,
                name=name,
                labels=labels,
                environment=env,
                detach=True,
                user=user,
                ports=list((ports or {}).keys()),
                host_config=host_config,
                networking_config=networking,
            )
            try:
                self.api.start(created["Id"])
            except Exception:
                # A container that failed to start (a taken host port, a bad mount) is removed,
                # so no half-made container stays `Created` and holds the name.
                try:
                    self.api.remove_container(created["Id"], force=True)
                except Exception:  # noqa: BLE001 - the start error is the one to report
                    pass
                raise
            return created["Id"]

    def keep_running(self, name: str) -> None:
        """Give a container the `unless-stopped` restart policy (after it proved healthy)."""
        with self._errors(f"update {name}"):
            self.api.update_container(name, restart_policy={"Name": "unless-stopped", "MaximumRetryCount": 0})

    def retire(self, name: str) -> None:
        """SIGTERM without waiting, and no restart: the container ends on its own time; whatever is
        left is removed by the next rollout. Saves the stop grace period on every deploy."""
        try:
            self.no_restart(name)
            with self._errors(f"retire {name}"):
                self.api.kill(name, signal="SIGTERM")
        except (NotFoundError, OperationFailed):
            pass

    def retire_later(self, names: list[str], after_s: float, grace_s: int) -> bool:
        """Stop and remove `names` off the caller's critical path (see docker_retire)."""
        return retire_later(self, names, after_s, grace_s)

    def no_restart(self, name: str) -> None:
        """Turn the restart policy off, so a stop (or a crash) is final."""
        with self._errors(f"retire {name}"):
            self.api.update_container(name, restart_policy={"Name": "no", "MaximumRetryCount": 0})

    def start(self, name: str) -> None:
        with self._errors(f"start {name}"):
            self.api.start(name)

    def rename(self, name: str, new_name: str) -> None:
        """Rename a container (running or not; what it serves is not touched)."""
        with self._errors(f"rename {name}"):
            self.api.rename(name, new_name)

    def remove(self, name: str, grace_s: int = 2) -> bool:
        """Stop (SIGTERM, then SIGKILL after grace_s) and remove; False when it did not exist."""
        try:
            with self._errors(f"stop {name}"):
                try:
                    self.api.stop(name, timeout=grace_s)
                except Exception as exc:  # already stopped is fine
                    if "not running" not in str(exc).lower() and "304" not in str(exc):
                        raise
                self.api.remove_container(name, force=True)
            return True
        except NotFoundError:
            return False
        except OperationFailed as exc:  # a retirement helper got there first: it is going away
            if "already in progress" in exc.message:
                return True
            raise

    def exec(self, name: str, cmd: list[str]) -> tuple[int, str]:
        with self._errors(f"exec in {name}"):
            ex = self.api.exec_create(name, cmd)
            out = self.api.exec_start(ex["Id"])
            code = self.api.exec_inspect(ex["Id"]).get("ExitCode")
        return code or 0, out.decode("utf-8", "replace")

    def logs(self, name: str, tail: int = 100, follow: bool = False) -> Iterator[str]:
        with self._errors(f"logs of {name}"):
            if not follow:
                text = self.api.logs(name, tail=tail, timestamps=False).decode("utf-8", "replace")
                yield from text.splitlines()
                return
        # Following has no end by design: a client without read timeout, reaching the engine the same
        # way (an APIClient's own base_url is internal, e.g. http+docker://localhost for a socket).
        client = self._client(None)
        with self._errors(f"logs of {name}"):
            pending = ""
            for chunk in client.logs(name, tail=tail, stream=True, follow=True):
                pending += chunk.decode("utf-8", "replace")
                *lines, pending = pending.split("\n")
                yield from lines

    # --- networks and volumes -----------------------------------------------------------------------

    def ensure_network(self, name: str, labels: dict[str, str]) -> bool:
        with self._errors(f"network {name}"):
            if any(n["Name"] == name for n in self.api.networks(names=[name])):  # names= is a prefix match
                return False
            self.api.create_network(name, driver="bridge", labels=labels, check_duplicate=True)
            return True

    def network_exists(self, name: str) -> bool:
        with self._errors(f"network {name}"):
            return any(n["Name"] == name for n in self.api.networks(names=[name]))

    def remove_network(self, name: str) -> bool:
        try:
            with self._errors(f"remove network {name}"):
                self.api.remove_network(name)
            return True
        except (NotFoundError, OperationFailed):
            return False

    def ensure_volume(self, name: str, labels: dict[str, str]) -> bool:
        with self._errors(f"volume {name}"):
            if any(
                v["Name"] == name for v in (self.api.volumes(filters={"name": name}).get("Volumes") or [])
            ):
                return False
            self.api.create_volume(name, labels=labels)
            return True

    def remove_volume(self, name: str) -> bool:
        try:
            with self._errors(f"remove volume {name}"):
                self.api.remove_volume(name, force=True)
            return True
        except (NotFoundError, OperationFailed):
            return False


# Where a container's cgroup lives: cgroup v1 (per controller) and v2 (one tree), for the cgroupfs
# and the systemd drivers.
_V1 = ("/sys/fs/cgroup/{ctl}/docker/{id}", "/sys/fs/cgroup/{ctl}/system.slice/docker-{id}.scope")
_V2 = ("/sys/fs/cgroup/docker/{id}", "/sys/fs/cgroup/system.slice/docker-{id}.scope")


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return None


def _stat_lines(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split()[:2] for line in text.splitlines() if len(line.split()) >= 2)}


def _system_ns() -> int:
    """All cpus' time since boot in ns, as Docker's system_cpu_usage (from /proc/stat)."""
    with open("/proc/stat") as fh:
        jiffies = sum(int(x) for x in fh.readline().split()[1:8])
    return jiffies * 10**9 // os.sysconf("SC_CLK_TCK")


def cgroup_stats(container_id: str) -> dict[str, Any] | None:
    """Docker's stats for a container of this machine, read from its cgroup; None where none is
    found (another machine's engine, another layout)."""
    cpus = os.cpu_count() or 1
    for v1 in _V1:
        mem = v1.format(ctl="memory", id=container_id)
        usage = _read(f"{mem}/memory.usage_in_bytes")
        if usage is None:
            continue
        stat = _stat_lines(_read(f"{mem}/memory.stat") or "")
        cpu = _read(v1.format(ctl="cpuacct", id=container_id) + "/cpuacct.usage")
        return {"memory_stats": {"usage": int(usage), "limit": int(_read(f"{mem}/memory.limit_in_bytes") or 0),
                                 "stats": stat},
                "cpu_stats": {"cpu_usage": {"total_usage": int(cpu or 0)}, "system_cpu_usage": _system_ns(),
                              "online_cpus": cpus}}
    for v2 in _V2:
        base = v2.format(id=container_id)
        usage = _read(f"{base}/memory.current")
        if usage is None:
            continue
        limit = (_read(f"{base}/memory.max") or "max").strip()
        cpu = _stat_lines(_read(f"{base}/cpu.stat") or "")
        return {"memory_stats": {"usage": int(usage), "limit": 0 if limit == "max" else int(limit),
                                 "stats": _stat_lines(_read(f"{base}/memory.stat") or "")},
                "cpu_stats": {"cpu_usage": {"total_usage": cpu.get("usage_usec", 0) * 1000},
                              "system_cpu_usage": _system_ns(), "online_cpus": cpus}}
    return None


class NotFoundError(OperationFailed):
    code = "not_found"


class BuildFailed(OperationFailed):
    """The team's Dockerfile does not build."""

    code = "build_failed"


def _explain(exc: BaseException) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())[:400]
