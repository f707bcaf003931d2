"""An image registry through the Registry HTTP API v2 (distribution): reachability and manifest
digests. Plain urllib with a timeout on every request; errors become Unreachable / OperationFailed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from elfctl.errors import OperationFailed, Unreachable

MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


class Registry:
    def __init__(self, address: str, timeout_s: float = 5.0):
        """address: host:port as used in image references (e.g. 127.0.0.1:5000), or an http(s) URL."""
        address = address.rstrip("/")
        if "://" in address:
            self.base = address
            self.address = address.split("://", 1)[1]
        else:
            self.address = address
            local = address.startswith(("127.", "localhost"))
            self.base = ("http://" if local else "https://") + address
        self.timeout_s = timeout_s

    def _path(self, repository: str) -> str:
        """Accept `host:port/name` image repositories as well as the bare `name`."""
        prefix = self.address + "/"
        return repository[len(prefix) :] if repository.startswith(prefix) else repository

    def _request(self, method: str, path: str, headers: dict | None = None):
        req = urllib.request.Request(self.base + path, method=method, headers=headers or {})
        try:
            return urllib.request.urlopen(req, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            return exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(
                f"registry {self.base} not reachable: {reason}",
                hint="run `elfctl infra up` to start the local registry, or fix registry.url",
            ) from None

    def ping(self) -> str:
        """GET /v2/: 200 (open) or 401 (needs auth) mean a v2 registry answers."""
        resp = self._request("GET", "/v2/")
        status = resp.status if hasattr(resp, "status") else resp.code
        if status in (200, 401):
            return resp.headers.get("Docker-Distribution-Api-Version", "registry/2.0")
        raise Unreachable(
            f"registry {self.base}/v2/ answered HTTP {status}: not a v2 registry", hint="check registry.url"
        )

    def digest(self, repository: str, tag: str) -> str | None:
        """The manifest digest of repository:tag, or None when the registry does not hold it."""
        resp = self._request(
            "HEAD", f"/v2/{self._path(repository)}/manifests/{tag}", {"Accept": MANIFEST_TYPES}
        )
        status = resp.status if hasattr(resp, "status") else resp.code
        if status == 404:
            return None
        if status != 200:
            raise OperationFailed(
                f"registry {self.base}: manifest {repository}:{tag} answered HTTP {status}",
                hint="check the registry's log and credentials",
            )
        return resp.headers.get("Docker-Content-Digest")

    def tags(self, repository: str) -> list[str]:
        resp = self._request("GET", f"/v2/{self._path(repository)}/tags/list")
        status = resp.status if hasattr(resp, "status") else resp.code
        if status == 404:
            return []
        if status != 200:
            raise OperationFailed(f"registry {self.base}: tags of {repository} answered HTTP {status}")
        return json.loads(resp.read() or b"{}").get("tags") or []

    def delete(self, repository: str, digest: str) -> bool:
        """Delete a manifest by digest (every tag on it goes with it); False when it is gone already.
        A registry that refuses deletes (HTTP 405: storage.delete.enabled off) is OperationFailed."""
        resp = self._request("DELETE", f"/v2/{self._path(repository)}/manifests/{digest}")
        status = resp.status if hasattr(resp, "status") else resp.code
        if status in (200, 202):
            return True
        if status == 404:
            return False
        raise OperationFailed(
            f"registry {self.base}: delete of {repository}@{digest} answered HTTP {status}"
            + (" (deletes are disabled)" if status == 405 else ""),
            hint="enable deletes in the registry (storage.delete.enabled: true) to remove its tags",
        )
