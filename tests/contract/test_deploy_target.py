"""One contract for every DeployTarget (ports.py), run against each real target as `app.target`
builds it: the Docker target on the real dockerd (images built there, the test registry configured),
and the Kubernetes target on kmock's emulator through the real `kubernetes` client.

What the deploy service relies on, seen from outside: prepare is idempotent; a healthy image
serves after rollout (phases reported, before_switch called once); one failing its health gate
leaves the old version serving; before_switch raising switches nothing; serving/status/logs/stop
tell the truth; host_port and endpoint_health answer or say None."""

from __future__ import annotations

import inspect
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from elfctl.ports import DeployTarget
from tests.deploy.conftest import TEST_HEALTH, docker_env, engine, registry_address  # noqa: F401 (fixtures)
from tests.k8s.conftest import TEAM_YAML, controller, emulator, image, k8s_project, kubeconfig  # noqa: F401
from tests.k8s.emulator import CRASH, DEPLOYMENTS

TARGETS = ["docker", "kubernetes"]


@dataclass
class Harness:
    target: DeployTarget
    spec: object
    good: Callable[[str], str]  # tag -> an image reference whose replicas pass the health gate
    bad: Callable[[str], str]  # tag -> one whose replicas never become healthy
    live: Callable[[], str | None]  # what users reach now, read without the target (HTTP / the API)
    shown: Callable[[str], str]  # what live() reads when the image of `tag` serves
    log_line: Callable[[], str]  # make the serving version log something; returns a line to find


def _wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def _docker(request, monkeypatch, project) -> Harness:
    from elfctl.adapters.team_files import load
    from elfctl.app import App
    from elfctl.output import Output
    from elfctl.services.deploy.teams import DOCKERFILE

    env = request.getfixturevalue("docker_env")
    docker = request.getfixturevalue("engine")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    team = "t" + env["ELFCTL_DEPLOY_PREFIX"][4:] + "-contract"
    folder = project / "teams" / team
    (folder / "www").mkdir(parents=True)
    (folder / "team.yaml").write_text(f"name: {team}\nport: 8080\nreplicas: 1\n{TEST_HEALTH}")
    (folder / "Dockerfile").write_text(DOCKERFILE.format(base_image=env["ELFCTL_DEPLOY_BASE_IMAGE"]))
    app = App(Output(quiet=True), cwd=project)
    request.addfinalizer(app.close)
    spec = load(folder / "team.yaml")
    repo = f"{env['ELFCTL_REGISTRY_URL']}/elfctl/{team}"
    built: dict[str, str] = {}

    def build(tag: str, health: str) -> str:
        if tag not in built:
            (folder / "www" / "index.html").write_text(f"page {tag}\n")
            (folder / "www" / "health").write_text(health)
            built[tag] = f"{repo}:{tag}"
            docker.build(str(folder), "Dockerfile", built[tag], {"elfctl.team": team})
            request.addfinalizer(lambda ref=built[tag]: docker.remove_image(ref))
        return built[tag]

    target = app.target
    request.addfinalizer(lambda: target.stop(team))

    def live() -> str | None:
        port = target.host_port(team)
        if port is None:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as resp:
                return resp.read().decode().strip()
        except OSError:
            return None

    def log_line() -> str:
        port = target.host_port(team)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/contract-marker", timeout=5).close()
        except OSError:  # the 404 is the point: busybox `httpd -v` logs each response's status
            pass
        return "response:404"

    return Harness(target, spec, lambda tag: build(tag, '{"status": "pass"}'),
                   lambda tag: build(tag, '{"status": "fail", "output": "contract: sick on purpose"}'),
                   live, lambda tag: f"page {tag}", log_line)


def _kubernetes(request) -> Harness:
    from elfctl.adapters.team_files import find
    from elfctl.app import App
    from elfctl.output import Output

    project = request.getfixturevalue("k8s_project")
    emu = request.getfixturevalue("emulator")
    ctl = request.getfixturevalue("controller")
    app = App(Output(quiet=True), cwd=project)
    request.addfinalizer(app.close)
    spec = find(project / "teams", "mkt")
    assert TEAM_YAML.startswith("name: mkt")

    def bad(tag: str) -> str:
        ctl.behaviour[image(tag)] = CRASH
        return image(tag)

    def live() -> str | None:
        dep = emu.obj(DEPLOYMENTS, "elf-test", "mkt")
        return dep["spec"]["template"]["spec"]["containers"][0]["image"] if dep else None

    def log_line() -> str:
        pods = [n for (r, _ns, n), o in emu.k.objects.items() if r.plural == "pods" and not o.deleted]
        emu.k.pod_logs.update({p: "contract-marker from the serving pod\n" for p in pods})
        return "contract-marker"

    return Harness(app.target, spec, image, bad, live, image, log_line)


@pytest.fixture(params=TARGETS)
def h(request, monkeypatch, project) -> Harness:
    return _docker(request, monkeypatch, project) if request.param == "docker" else _kubernetes(request)


def _members() -> dict[str, object]:
    names = [n for n in vars(DeployTarget) if not n.startswith("_")] + list(DeployTarget.__annotations__)
    return {n: getattr(DeployTarget, n, None) for n in names}


@pytest.mark.parametrize("which", TARGETS)
def test_each_target_implements_the_whole_port(which):
    """Every declared attribute and method, with the port's parameter names (no optional extras)."""
    if which == "docker":
        from elfctl.adapters.docker_target import DockerTarget as cls
    else:
        from elfctl.adapters.kubernetes_target import KubernetesTarget as cls
    for name, declared in _members().items():
        assert hasattr(cls, name) or name in inspect.signature(cls.__init__).parameters or name == "name", name
        if callable(declared):
            want = list(inspect.signature(declared).parameters)
            got = list(inspect.signature(getattr(cls, name)).parameters)
            assert got == want, f"{cls.__name__}.{name}{got} differs from the port's {want}"
    assert isinstance(cls.pins_digest, bool) and isinstance(cls.needs_local_image, bool)


def test_prepare_is_idempotent(h):
    h.target.prepare()
    changed, details = h.target.prepare()
    assert changed is False and details


def test_a_healthy_version_serves_and_is_reported(h):
    team = h.spec.name
    h.target.prepare()
    phases, switched = [], []
    h.target.set_progress(phases.append)
    r = h.target.rollout(h.spec, h.good("v1"), 1, {}, {}, 60, before_switch=lambda: switched.append(1))
    h.target.set_progress(None)
    assert r.ok, r.reason
    assert switched == [1] and phases == ["starting", "verifying", "switched"]
    assert r.retired == [] and r.leftovers == [] and r.logs == ""
    assert h.target.serving(team) == h.good("v1").split("@")[0]
    assert _wait_for(lambda: h.live() == h.shown("v1")), h.live()
    st = h.target.status(team)
    assert st["status"] == "pass" and st["ready"] == st["desired"] == h.spec.replicas, st
    assert str(st["revision"]) == "1" and st["image"].split("@")[0] == h.good("v1").split("@")[0]
    assert st["host_port"] == h.target.host_port(team)
    assert team in h.target.teams()
    answers = h.target.endpoint_health(team, h.spec.health.path, timeout=5, endpoints=st.get("endpoints"))
    assert answers is None or [a[1] for a in answers] == ["pass"] * h.spec.replicas, answers


def test_a_version_failing_its_health_gate_leaves_the_old_one_serving(h):
    team = h.spec.name
    h.target.prepare()
    assert h.target.rollout(h.spec, h.good("v1"), 1, {}, {}, 60).ok
    called = []
    r = h.target.rollout(h.spec, h.bad("v2"), 2, {}, {}, 10, before_switch=lambda: called.append(1))
    assert not r.ok and r.reason
    assert h.target.serving(team) == h.good("v1").split("@")[0]
    assert h.live() == h.shown("v1")
    st = h.target.status(team)
    assert st["status"] == "pass" and str(st["revision"]) == "1", st


def test_before_switch_raising_switches_nothing(h):
    """The deploy lease's fence: a rollout whose owner lost the lease must not serve."""
    team = h.spec.name
    h.target.prepare()
    assert h.target.rollout(h.spec, h.good("v1"), 1, {}, {}, 60).ok

    def lost():
        raise RuntimeError("lease lost")

    with pytest.raises(RuntimeError, match="lease lost"):
        h.target.rollout(h.spec, h.good("v2"), 2, {}, {}, 60, before_switch=lost)
    assert h.target.serving(team) == h.good("v1").split("@")[0]
    assert h.live() == h.shown("v1")
    assert str(h.target.status(team)["revision"]) == "1"


def test_logs_then_stop(h):
    team = h.spec.name
    h.target.prepare()
    assert h.target.rollout(h.spec, h.good("v1"), 1, {}, {}, 60).ok
    marker = h.log_line()
    assert _wait_for(lambda: any(marker in line for line in h.target.logs(team, tail=20))), \
        list(h.target.logs(team, tail=20))
    assert h.target.stop(team) is True
    assert h.target.serving(team) is None and h.live() is None
    st = h.target.status(team)
    assert st["status"] == "fail" and st["ready"] == 0, st
    assert team not in h.target.teams()
    assert list(h.target.logs(team)) == []
    assert h.target.stop(team) is False


def test_scale_runs_more_then_fewer_replicas_of_what_serves(h):
    """The resource monitor's scale_down and restore: the same revision keeps serving throughout,
    the count never goes below 1, and a team that is not running is refused."""
    from elfctl.errors import InputError, OperationFailed

    team = h.spec.name
    h.target.prepare()
    assert h.target.rollout(h.spec, h.good("v1"), 1, {}, {}, 60).ok
    n = h.spec.replicas

    def running(count: int):
        st = h.target.status(team)
        return st["desired"] == count and st["ready"] == count and st["status"] == "pass" and st

    assert h.target.scale(team, n + 1) == n
    st = _wait_for(lambda: running(n + 1))
    assert st and str(st["revision"]) == "1", h.target.status(team)
    assert h.live() == h.shown("v1")
    answers = h.target.endpoint_health(team, h.spec.health.path, timeout=5, endpoints=st.get("endpoints"))
    assert answers is None or [a[1] for a in answers] == ["pass"] * (n + 1), answers
    assert h.target.scale(team, 1) == n + 1
    assert _wait_for(lambda: running(1)), h.target.status(team)
    assert h.live() == h.shown("v1")
    with pytest.raises(InputError, match="at least 1"):
        h.target.scale(team, 0)
    assert h.target.stop(team) is True
    with pytest.raises(OperationFailed, match="not"):
        h.target.scale(team, 2)
