"""The Kubernetes API, through the official `kubernetes` client: the only module importing it.

A small generic client over the objects elfctl manages (JSON dicts in, JSON dicts out), so the
target and the tests speak the API's own shapes. The kubeconfig and context are chosen as kubectl
does: an explicit path, else `KUBECONFIG` (a `:`-separated list is merged), else
`~/.kube/config`; the context given, else the kubeconfig's current one. Every call has a hard
timeout and no retries, and SDK/HTTP errors become ElfErrors here: unreachable -> Unreachable
(exit 3), 403 -> a message naming the verb and the resource, 401 -> credentials rejected.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from elfctl.errors import ConfigError, ElfError, OperationFailed, Unreachable
from elfctl.redact import scrub

FIELD_MANAGER = "elfctl"
# kind -> (API prefix, plural, group for messages, namespaced)
KINDS: dict[str, tuple[str, str, str, bool]] = {
    "Namespace": ("/api/v1", "namespaces", "", False),
    "ConfigMap": ("/api/v1", "configmaps", "", True),
    "Secret": ("/api/v1", "secrets", "", True),
    "Service": ("/api/v1", "services", "", True),
    "Pod": ("/api/v1", "pods", "", True),
    "Deployment": ("/apis/apps/v1", "deployments", "apps", True),
}


class Forbidden(OperationFailed):
    code = "forbidden"


def kubeconfig_paths(explicit: str | None = None, environ: dict | None = None) -> str:
    """kubectl's rule: --kubeconfig, else $KUBECONFIG (a list), else ~/.kube/config."""
    environ = os.environ if environ is None else environ
    return explicit or environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())


_KUBECONFIG_HINT = ("set KUBECONFIG or kubernetes.kubeconfig, and kubernetes.context "
                    "(see `kubectl config get-contexts`)")


def check_kubeconfig(files: list[str], context: str | None) -> None:
    """The shape the client assumes, checked first so that a broken file gets a sentence naming it
    (the client itself says "'str' object does not support item assignment"). Files merge as
    kubectl merges them: the first to name a context, cluster or user wins."""
    import yaml

    merged: dict[str, dict[str, Any]] = {"contexts": {}, "clusters": {}, "users": {}}
    current = None
    for name in files:
        path = Path(name).expanduser()
        if not path.is_file():
            continue
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"kubeconfig {path}: cannot be read as YAML ({scrub(str(exc)).splitlines()[0]})",
                              hint=_KUBECONFIG_HINT) from None
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ConfigError(f"kubeconfig {path} is not a kubeconfig: it holds a YAML {type(doc).__name__}, "
                              "not a mapping with clusters, contexts and users", hint=_KUBECONFIG_HINT)
        current = current or doc.get("current-context")
        for key in merged:
            entries = doc.get(key) or []
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise ConfigError(f"kubeconfig {path}: '{key}' must be a list of named entries",
                                  hint=_KUBECONFIG_HINT)
            for e in entries:
                merged[key].setdefault(str(e.get("name")), e.get(key[:-1]) or {})
    chosen = context or current
    if not chosen or chosen not in merged["contexts"]:
        return  # the client's own message names the missing context well
    ctx = merged["contexts"][chosen]
    where = ", ".join(files)
    for key, ref in (("clusters", "cluster"), ("users", "user")):
        name = ctx.get(ref) if isinstance(ctx, dict) else None
        if name is not None and str(name) not in merged[key]:
            raise ConfigError(f"kubeconfig {where}: context {chosen!r} uses {ref} {name!r}, which no "
                              f"'{key}' entry defines", hint=f"add the {ref} to the kubeconfig, or choose "
                                                             "another context with kubernetes.context")


class KubeCluster:
    def __init__(self, kubeconfig: str | None = None, context: str | None = None, timeout_s: float = 10.0):
        self.kubeconfig = kubeconfig_paths(kubeconfig)
        self.context = context or None
        self.timeout_s = timeout_s
        self._api = None

    # --- connection -------------------------------------------------------------------------
    @property
    def api(self):
        if self._api is None:
            from kubernetes import config as kconfig
            from kubernetes.client import ApiClient, Configuration

            cfg = Configuration()
            files = [p for p in self.kubeconfig.split(os.pathsep) if p]
            try:
                if not any(Path(p).expanduser().is_file() for p in files) and os.environ.get(
                        "KUBERNETES_SERVICE_HOST"):
                    kconfig.load_incluster_config(client_configuration=cfg)  # as kubectl inside a pod
                else:
                    check_kubeconfig(files, self.context)
                    kconfig.load_kube_config(config_file=self.kubeconfig, context=self.context,
                                             client_configuration=cfg, persist_config=False)
            except (kconfig.ConfigException, OSError, ValueError, TypeError) as exc:
                ctx = f", context {self.context!r}" if self.context else ""
                raise ConfigError(f"kubeconfig {self.kubeconfig}{ctx}: {scrub(str(exc))}",
                                  hint="set KUBECONFIG or kubernetes.kubeconfig, and kubernetes.context "
                                       "(see `kubectl config get-contexts`)") from None
            cfg.retries = 0  # fail fast: a deploy never hangs on a dead API server
            self._api = ApiClient(configuration=cfg)
        return self._api

    @property
    def host(self) -> str:
        return self.api.configuration.host

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    def _request(self, verb: str, what: str, method: str, path: str, query: dict | None = None,
                 body: Any = None, content_type: str | None = None, stream: bool = False):
        """One API call. `verb`/`what` name it in errors ("patch", "deployments.apps/mkt in ns")."""
        import urllib3

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        try:
            method, url, headers, body, _ = self.api.param_serialize(
                method, path, query_params=list((query or {}).items()), header_params=headers, body=body,
                auth_settings=["BearerToken"])
            timeout = (min(5.0, self.timeout_s), None if stream else self.timeout_s)
            resp = self.api.call_api(method, url, header_params=headers, body=body, _request_timeout=timeout)
        except urllib3.exceptions.HTTPError as exc:
            # urllib3 wraps the cause in "HTTPConnection(host=..., port=...): <cause>": keep the cause.
            reason = str(getattr(exc, "reason", None) or exc).split("): ", 1)[-1]
            raise Unreachable(f"Kubernetes API {self.host} unreachable: {scrub(reason)}",
                              hint=f"check the cluster and the context in {self.kubeconfig} "
                                   f"(`kubectl cluster-info{' --context ' + self.context if self.context else ''}`)"
                              ) from None
        except OSError as exc:
            raise Unreachable(f"Kubernetes API {self.host} unreachable: {exc}",
                              hint="check the cluster address in the kubeconfig") from None
        if stream and resp.status < 300:
            return resp
        data = resp.read()
        if resp.status >= 300:
            self._raise(resp.status, data, verb, what)
        return json.loads(data) if data and data[:1] in (b"{", b"[") else data

    def _raise(self, status: int, data: bytes, verb: str, what: str):
        try:
            doc = json.loads(data)
            server = doc.get("message") or doc.get("reason") or ""
        except (ValueError, AttributeError):
            server = (data or b"").decode("utf-8", "replace")[:200]
        server = scrub(str(server))
        if status == 404:
            raise _NotFound(what)
        if status == 403:
            raise Forbidden(f"Kubernetes API refused to {verb} {what} (403 Forbidden): {server}",
                            hint=f"grant the user of context {self.context or '(current)'} the right to "
                                 f"{verb} {what.split('/')[0]} (check with `kubectl auth can-i {verb} "
                                 f"{what.split('/')[0]}`)")
        if status == 401:
            raise OperationFailed(f"Kubernetes API rejected the credentials to {verb} {what} (401): {server}",
                                  hint=f"refresh the credentials of the context in {self.kubeconfig}",
                                  code="unauthorized")
        if status == 409:
            raise _Conflict(what)
        if status >= 500 or status == 429:
            raise Unreachable(f"Kubernetes API failed to {verb} {what} ({status}): {server}",
                              hint="the API server is overloaded or broken; retry, then check it")
        raise OperationFailed(f"Kubernetes API refused to {verb} {what} ({status}): {server}",
                              hint="the manifest was rejected by the API server; see the message above")

    # --- objects ----------------------------------------------------------------------------
    @staticmethod
    def _path(kind: str, namespace: str | None, name: str | None = None) -> tuple[str, str]:
        prefix, plural, group, namespaced = KINDS[kind]
        path = prefix + (f"/namespaces/{quote(namespace)}" if namespaced and namespace else "") + f"/{plural}"
        if name:
            path += f"/{quote(name)}"
        res = plural + (f".{group}" if group else "")
        what = res + (f"/{name}" if name else "") + (f" in namespace {namespace}" if namespaced and namespace else "")
        return path, what

    def version(self) -> str:
        data = self._request("get", "the server version", "GET", "/version")
        return data.get("gitVersion") or f"v{data.get('major')}.{data.get('minor')}"

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict | None:
        path, what = self._path(kind, namespace, name)
        try:
            return self._request("get", what, "GET", path)
        except _NotFound:
            return None

    def list(self, kind: str, namespace: str, labels: dict[str, str]) -> list[dict]:
        path, what = self._path(kind, namespace)
        sel = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        try:
            items = self._request("list", what, "GET", path, {"labelSelector": sel}).get("items") or []
        except _NotFound:
            return []
        # The selector again, client-side: cheap, and exact even where a server ignores it.
        return [i for i in items if all((i.get("metadata", {}).get("labels") or {}).get(k) == v
                                        for k, v in labels.items())]

    def create(self, obj: dict) -> dict:
        meta = obj["metadata"]
        path, _ = self._path(obj["kind"], meta.get("namespace"))
        _, what = self._path(obj["kind"], meta.get("namespace"), meta["name"])
        return self._request("create", what, "POST", path, {"fieldManager": FIELD_MANAGER}, obj)

    def apply(self, obj: dict) -> dict:
        """Server-side apply with elfctl as field manager (forced: elfctl owns these objects).
        Creates when missing, which some API fakes do not do: then POST."""
        meta = obj["metadata"]
        path, what = self._path(obj["kind"], meta.get("namespace"), meta["name"])
        try:
            return self._request("patch", what, "PATCH", path, {"fieldManager": FIELD_MANAGER, "force": "true"},
                                 json.dumps(obj), "application/apply-patch+yaml")
        except _NotFound:
            return self.create(obj)

    def patch(self, kind: str, name: str, namespace: str | None, change: dict) -> dict:
        """A JSON merge patch of a few fields (not server-side apply: an apply naming only them would
        drop every other field elfctl's apply owns)."""
        path, what = self._path(kind, namespace, name)
        return self._request("patch", what, "PATCH", path, {"fieldManager": FIELD_MANAGER + "-scale"},
                             change, "application/merge-patch+json")  # the client serialises JSON bodies

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        path, what = self._path(kind, namespace, name)
        try:
            self._request("delete", what, "DELETE", path, {"propagationPolicy": "Background"})
            return True
        except _NotFound:
            return False

    def pod_log(self, name: str, namespace: str, container: str, tail: int = 100, follow: bool = False,
                previous: bool = False) -> Iterator[str]:
        path, what = self._path("Pod", namespace, name)
        query: dict[str, Any] = {"container": container, "tailLines": str(tail)}
        if follow:
            query["follow"] = "true"
        if previous:
            query["previous"] = "true"
        try:
            resp = self._request("get", f"pods/log {name} in namespace {namespace}", "GET", path + "/log", query,
                                 stream=True)
        except _NotFound:
            return iter(())
        if not hasattr(resp, "response"):  # a non-streamed answer (already read)
            text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else json.dumps(resp)
            return iter(text.splitlines())
        return _lines(resp.response)


def _lines(raw) -> Iterator[str]:
    buf = b""
    try:
        for chunk in raw.stream(4096, decode_content=True):
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                yield line.decode("utf-8", "replace")
        if buf:
            yield buf.decode("utf-8", "replace")
    finally:
        raw.release_conn()


class _NotFound(ElfError):
    code = "not_found"


class _Conflict(ElfError):
    code = "conflict"
