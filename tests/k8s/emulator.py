"""A Kubernetes API server for tests: kmock's KubernetesEmulator over HTTP, in a background thread,
plus a tiny "controller" that moves Deployment status and pods as the real controllers would.

What kmock 0.8 lacks and this adds (each the smallest faithful piece):
- cluster-scoped namespaces: its path parser expects /api/v1/namespaces/NS/..., so POST
  /api/v1/namespaces answers 500 and GET /api/v1/namespaces/NAME reads as a namespace, not an
  object. Those two paths are served here from kmock's own object store.
- metadata.generation: the API server bumps it when a Deployment's spec changes; kubectl's
  rollout status depends on it (observedGeneration).
- pod logs (GET .../pods/NAME/log) from `pod_logs`, and 403 answers for chosen verbs/resources.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
import time
import uuid
from pathlib import Path

import aiohttp.web
import attrs
import yaml
from kmock import KubernetesEmulator, Server
from kmock._internal import dicts, enums

NS_PATH = re.compile(r"^/api/v1/namespaces/?(?P<name>[^/]+)?$")
VERBS = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}
DEPLOYMENTS = "apps/v1/deployments"
PODS = "v1/pods"


def _status(code: int, reason: str, message: str) -> aiohttp.web.Response:
    return aiohttp.web.json_response({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
                                      "code": code, "reason": reason, "message": message}, status=code)


@attrs.define(kw_only=True)
class ClusterEmulator(KubernetesEmulator):
    forbidden: set = attrs.field(factory=set)  # {(verb, plural)}
    pod_logs: dict = attrs.field(factory=dict)  # pod name -> text
    writes: list = attrs.field(factory=list)  # (verb, path) of every write, for "nothing written" checks
    calls: list = attrs.field(factory=list)  # (verb, path) of every request

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        verb = VERBS.get(raw.method, raw.method.lower())
        self.calls.append((verb, raw.path))
        if raw.method in ("POST", "PATCH", "PUT", "DELETE"):
            self.writes.append((verb, raw.path))
        for fverb, fplural in self.forbidden:
            if fverb == verb and f"/{fplural}" in raw.path:
                return _status(403, "Forbidden",
                               f'{fplural} is forbidden: User "system:serviceaccount:ci:deployer" cannot {verb} '
                               f'resource "{fplural}" in the namespace')
        m = NS_PATH.match(raw.path)
        if m and not raw.query.get("watch"):
            return await self._namespaces(raw, m["name"])
        return await super().__call__(raw)

    async def _namespaces(self, raw, name):
        await raw.read()
        key = ("v1/namespaces", None, name) if name else None
        async with self._lock:
            if raw.method == "POST":
                obj = json.loads(await raw.text())
                key = ("v1/namespaces", None, obj["metadata"]["name"])
                if _live(self, key) is not None:
                    return _status(409, "AlreadyExists", f'namespaces "{key[2]}" already exists')
                obj.setdefault("status", {"phase": "Active"})
                self.objects[key] = obj
                return aiohttp.web.json_response(obj, status=201)
            if raw.method == "GET" and name is None:
                items = [o.raw for (r, _, _), o in self.objects.items()
                         if r.plural == "namespaces" and not o.deleted]
                return aiohttp.web.json_response({"kind": "NamespaceList", "items": items})
            if _live(self, key) is None:
                return _status(404, "NotFound", f'namespaces "{name}" not found')
            if raw.method == "GET":
                return aiohttp.web.json_response(self.objects[key].raw)
            if raw.method == "PATCH":
                self.objects[key].patch(json.loads(await raw.text()))
                return aiohttp.web.json_response(self.objects[key].raw)
            if raw.method == "DELETE":
                self.objects[key].delete()
                return aiohttp.web.json_response({"kind": "Status", "status": "Success"})
        return _status(405, "MethodNotAllowed", raw.method)

    async def _handle(self, request):
        res = request.resource
        if res is not None and res.plural == "pods" and request.subresource == "log":
            return aiohttp.web.Response(text=self.pod_logs.get(request.name, ""))
        if res is not None and res.plural == "deployments" and request.subresource is None \
                and isinstance(request.data, dict):
            meta = request.data.setdefault("metadata", {})
            if request.action == enums.action.CREATE:
                meta.update(generation=1, uid=str(uuid.uuid4()))
            elif request.action == enums.action.UPDATE:
                live = _live(self, (DEPLOYMENTS, request.namespace, request.name))
                if live is not None:
                    old = live.raw
                    new = dicts.patch_dict(copy.deepcopy(old), request.data)
                    gen = old.get("metadata", {}).get("generation", 1)
                    meta["generation"] = gen + 1 if new.get("spec") != old.get("spec") else gen
        return await super()._handle(request)


def _live(k, key):
    """The stored object at key, or None when absent or soft-deleted (keys may be strings)."""
    try:
        obj = k.objects[key]
    except KeyError:
        return None
    return None if obj.deleted else obj


class Emulator:
    """Runs the ClusterEmulator on 127.0.0.1 in its own thread and event loop."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.k: ClusterEmulator | None = None
        self.url = ""
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="kmock")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self):
        self._stop = asyncio.Event()
        async with ClusterEmulator() as k, Server(k) as srv:
            self.k, self.url = k, str(srv.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def start(self) -> Emulator:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("kmock emulator did not start")
        return self

    def stop(self):
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def call(self, fn):
        """Run fn(k) inside the emulator's loop (objects are not thread-safe)."""
        async def run():
            async with self.k._lock:
                return fn(self.k)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def obj(self, resource: str, namespace: str | None, name: str) -> dict | None:
        def get(k):
            live = _live(k, (resource, namespace, name))
            return copy.deepcopy(live.raw) if live is not None else None
        return self.call(get)

    def kubeconfig(self, folder: Path, context: str = "emulator", token: str = "t0ken-for-tests") -> Path:
        path = folder / f"kubeconfig-{uuid.uuid4().hex[:6]}"
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": context,
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": "kmock", "user": "tester"}}],
        }))
        return path


# --- the controller ----------------------------------------------------------------------------
# A behaviour per image: what the Deployment controller and the kubelet would report for pods of it.
COMPLETE, SLOW, STUCK, CRASH, PULL = "complete", "slow", "stuck", "crashloop", "imagepull"


class Controller:
    """Polls the emulator and, for each Deployment whose generation it has not observed, writes the
    status a real cluster would reach for that image's behaviour (default: complete)."""

    def __init__(self, emu: Emulator, period_s: float = 0.03):
        self.emu = emu
        self.behaviour: dict[str, str] = {}
        self.fallback = COMPLETE  # for images not in `behaviour`
        self.period_s = period_s
        self._seen: dict[tuple, tuple] = {}
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="k8s-controller")

    def start(self) -> Controller:
        self._thread.start()
        return self

    def stop(self):
        self._halt.set()
        self._thread.join(5)

    def _loop(self):
        while not self._halt.is_set():
            try:
                self.emu.call(self._reconcile)
            except Exception:  # the emulator is shutting down
                pass
            time.sleep(self.period_s)

    def _reconcile(self, k):
        now = time.monotonic()
        for (res, ns, name), obj in list(k.objects.items()):
            if res.plural != "deployments" or obj.deleted:
                continue
            dep = obj.raw
            gen = dep.get("metadata", {}).get("generation", 1)
            image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
            want = dep["spec"].get("replicas", 1)
            key = (ns, name)
            seen = self._seen.get(key)
            if seen is None or seen[0] != gen:
                self._seen[key] = seen = (gen, now)
            mode = self.behaviour.get(image, self.fallback)
            elapsed = now - seen[1]
            status = self._status(mode, gen, want, elapsed, dep)
            if status is not None and status != dep.get("status"):
                obj.patch({"status": None})
                obj.patch({"status": status})
                self._pods(k, ns, name, dep, image, mode, want)

    @staticmethod
    def _status(mode, gen, want, elapsed, dep):
        progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                       "message": "ReplicaSet is progressing."}
        if mode == COMPLETE or (mode == SLOW and elapsed > 0.3):
            return {"observedGeneration": gen, "replicas": want, "updatedReplicas": want, "readyReplicas": want,
                    "availableReplicas": want,
                    "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                   {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
        old = (dep.get("status") or {}).get("availableReplicas") or 0
        base = {"observedGeneration": gen, "replicas": want + 1, "updatedReplicas": 1, "readyReplicas": old,
                "availableReplicas": old, "unavailableReplicas": 1}
        if mode == SLOW:
            return {**base, "conditions": [progressing]}
        if mode == STUCK and elapsed > 0.2:
            return {**base, "conditions": [{"type": "Progressing", "status": "False",
                                             "reason": "ProgressDeadlineExceeded",
                                             "message": f'ReplicaSet "{dep["metadata"]["name"]}-x" has timed out '
                                                        f"progressing."}]}
        return {**base, "conditions": [progressing]}

    def _pods(self, k, ns, name, dep, image, mode, want):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        for (res, pns, _), obj in list(k.objects.items()):  # the old pods go when a new version is done
            if res.plural == "pods" and pns == ns and not obj.deleted and \
                    obj.raw["metadata"]["labels"].get("app.kubernetes.io/name") == name and \
                    obj.raw["spec"]["containers"][0]["image"] != image and mode == COMPLETE:
                obj.delete()
        for i in range(want if mode in (COMPLETE, SLOW) else 1):
            pname = f"{name}-{abs(hash(image)) % 10**6}-{i}"
            if mode == CRASH:
                cs = {"name": "team", "ready": False, "restartCount": 4, "image": image,
                      "state": {"waiting": {"reason": "CrashLoopBackOff",
                                            "message": "back-off 40s restarting failed container"}},
                      "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}
            elif mode == PULL:
                cs = {"name": "team", "ready": False, "restartCount": 0, "image": image,
                      "state": {"waiting": {"reason": "ImagePullBackOff",
                                            "message": f'Back-off pulling image "{image}"'}}}
            elif mode == COMPLETE:
                cs = {"name": "team", "ready": True, "restartCount": 0, "image": image,
                      "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
            else:
                cs = {"name": "team", "ready": False, "restartCount": 0, "image": image,
                      "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
            k.objects[PODS, ns, pname] = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pname, "namespace": ns, "labels": dict(labels)},
                "spec": {"containers": [{"name": "team", "image": image}]},
                "status": {"phase": "Running", "containerStatuses": [cs]},
            }
