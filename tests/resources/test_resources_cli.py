"""`elfctl resources` as a user runs it: thresholds and strategies from elfctl.toml, bad settings
refused with one line (exit 2, nothing measured or changed), a hung Docker engine a critical row
within the timeout (never a hung command), --watch as JSON lines, and the policy plan's rules."""

from __future__ import annotations

import json
import time

import pytest

from elfctl.services.resources.monitor import Snapshot
from elfctl.services.resources.policy import plan
from elfctl.services.resources.status import Reading, TypeReport, classify
from tests.health.test_health_cli import silent_server  # noqa: F401 (fixture)

CALM = {"ELFCTL_RESOURCES_CPU_WARNING": "1000", "ELFCTL_RESOURCES_CPU_CRITICAL": "1000",
        "ELFCTL_DEPLOY_TARGET": "kubernetes", "KUBECONFIG": "/nonexistent"}  # no engine, no cluster needed


def _toml(project, text: str) -> None:
    with open(project / "elfctl.toml", "a") as fh:
        fh.write("\n" + text + "\n")


def test_thresholds_come_from_the_config(project, elfctl):
    _toml(project, "[resources.memory]\nwarning = 0.001\ncritical = 0.002\n")
    proc = elfctl("resources", "--json", cwd=project, env=CALM)
    doc = json.loads(proc.stdout)
    memory = doc["resources"]["memory"]
    assert proc.returncode == 1 and memory["status"] == "critical", memory
    assert (memory["warning"], memory["critical"]) == (0.001, 0.002)
    assert doc["error"]["message"].startswith("resources: ") and "memory" in doc["error"]["message"]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("text, words", [
    ('[fallback.memory]\nstrategies = ["use_cache", "reboot"]', ["fallback.memory.strategies", "'reboot'",
                                                                 "scale_down"]),
    ("[fallback.docker]\nstrategies = 3", ["fallback.docker.strategies", "3", "a list of strings"]),
    ("[resources.docker]\nwarning = 96", ["resources.docker.warning", "96", "resources.docker.critical"]),
    ("[resources.cpu]\ncritical = -1", ["resources.cpu.critical", "-1"]),
])
def test_bad_settings_are_one_clear_line_and_exit_2(project, elfctl, text, words):
    _toml(project, text)
    before = sorted(p.name for p in (project / ".elf").iterdir())
    proc = elfctl("resources", cwd=project, env=CALM)
    assert proc.returncode == 2, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: ") and str(project / "elfctl.toml") in first, proc.stderr
    assert all(w in proc.stderr for w in words), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert sorted(p.name for p in (project / ".elf").iterdir()) == before  # nothing made, nothing measured
    as_json = json.loads(elfctl("resources", "--json", cwd=project, env=CALM).stdout)
    assert as_json["error"]["code"] == "invalid_config"


def test_strategies_from_the_environment_too(project, elfctl):
    proc = elfctl("resources", "--json", cwd=project, env={**CALM, "ELFCTL_FALLBACK_CPU_STRATEGIES": "retry,nap"})
    assert proc.returncode == 2 and "'nap'" in json.loads(proc.stdout)["error"]["message"]


def test_a_hung_docker_engine_is_critical_within_the_timeout(project, elfctl, silent_server):  # noqa: F811
    """A listener that accepts and never answers: the engine call would wait docker.timeout_s."""
    env = {**CALM, "ELFCTL_DEPLOY_TARGET": "docker", "ELFCTL_DOCKER_HOST": f"tcp://127.0.0.1:{silent_server}",
           "ELFCTL_DOCKER_TIMEOUT_S": "60", "ELFCTL_RESOURCES_TIMEOUT_S": "1"}
    t0 = time.monotonic()
    proc = elfctl("resources", "--json", cwd=project, env=env, timeout=60)
    took = time.monotonic() - t0
    doc = json.loads(proc.stdout)
    docker = doc["resources"]["docker"]
    assert proc.returncode == 1 and docker["status"] == "critical", docker
    assert docker["readings"][0]["detail"] == "no answer within 1s"
    assert took < 30, took  # the command ends at its timeout, not the engine's 60 s


def test_watch_prints_one_json_object_per_round(project, elfctl):
    proc = elfctl("resources", "--watch", "--count", "2", "--interval", "0.1", "--json", cwd=project, env=CALM)
    assert proc.returncode == 0, proc.stderr
    rounds = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rounds) == 2 and all(set(r["resources"]) == {"api_quota", "memory", "cpu", "database", "mcp_server",
                                                               "network", "docker", "k8s_pod"} for r in rounds)
    assert rounds[0]["resources"]["mcp_server"]["status"] == "not_configured"


def test_interval_out_of_range_is_a_usage_error(project, elfctl):
    proc = elfctl("resources", "--watch", "--interval", "0", cwd=project, env=CALM)
    assert proc.returncode == 2 and "--interval" in proc.stderr


def test_classify_levels():
    assert [classify(v, 75, 90) for v in (None, 10, 75, 89.9, 90, 100, 130)] == \
        ["unknown", "healthy", "warning", "warning", "critical", "exhausted", "exhausted"]
    assert classify(100, 1000, 1000) == "healthy"  # thresholds above 100% mean "never"


def _snap(*readings: Reading) -> Snapshot:
    types = {}
    for r in readings:
        types.setdefault(r.type, []).append(r)
    return Snapshot("t", [TypeReport(t, "healthy", 80, 95, rs) for t, rs in types.items()])


def test_plan_scales_a_team_once_and_restores_only_when_all_its_readings_are_healthy():
    hot = Reading("docker", "container:a-0", "critical", 97, "97%", team="a")
    also = Reading("memory", "container:a-0", "critical", 97, "97%", team="a")
    steps = plan(_snap(hot, also), {"docker": ["scale_down"], "memory": ["use_cache", "scale_down"]}, [], set())
    assert [(s.strategy, s.target, s.result) for s in steps] == [
        ("scale_down", "a", "would"), ("use_cache", "memory", "call path")]
    row = {"team": "a", "resource": "docker", "original_replicas": 2}
    half = _snap(Reading("docker", "container:a-0", "healthy", 10, "", team="a"),
                 Reading("docker", "container:a-1", "warning", 88, "", team="a"))
    assert plan(half, {"docker": ["scale_down"]}, [row], set()) == []  # not yet: one still warm
    calm = _snap(Reading("docker", "container:a-0", "healthy", 10, "", team="a"))
    assert [(s.strategy, s.target) for s in plan(calm, {"docker": ["scale_down"]}, [row], set())] == [("restore", "a")]
    gone = _snap(Reading("docker", "engine", "critical", None, "engine not answering"))
    assert [s.strategy for s in plan(gone, {"docker": ["scale_down"]}, [row], set())] == []  # nothing read: wait
