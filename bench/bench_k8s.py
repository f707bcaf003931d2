"""Kubernetes target on the kmock emulator (real `kubernetes` client over HTTP):
- an unchanged redeploy (`rollout` that finds nothing to write) beside the least a client must do
  to know that: GET the three objects, in the same run;
- rendering + strict schema validation of a team's manifests beside plain rendering (no validation).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Row, time_call


def run(env) -> list[Row]:
    from tests.k8s.emulator import Controller, Emulator

    from elfctl.adapters.k8s_schema import validate
    from elfctl.adapters.kubernetes import KubeCluster
    from elfctl.adapters.kubernetes_target import KubernetesTarget
    from elfctl.domain import k8s_manifests as m
    from elfctl.domain.team import parse

    emu = Emulator().start()
    ctl = Controller(emu).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            spec = parse({"name": "mkt", "replicas": 2, "env": {"A": "1"}, "secrets": ["BENCH_K8S_KEY"]},
                         Path(tmp) / "teams/mkt/team.yaml", "mkt")
            cluster = KubeCluster(str(emu.kubeconfig(Path(tmp))), None, 10)
            target = KubernetesTarget(cluster, "bench", teams=lambda: [spec], poll_s=0.02,
                                      secret_values=lambda s: {"BENCH_K8S_KEY": "bench-secret-value"})
            target.prepare()
            image = "reg/mkt:1@sha256:" + "1" * 64
            assert target.rollout(spec, image, 1, {}, {}, 10).ok
            target.server_version()
            ctl.stop()  # quiet emulator while timing: the controller's polling would add noise to both sides

            def unchanged():
                r = target.rollout(spec, image, 1, {}, {}, 10)
                assert r.ok and not r.changed

            def three_gets():
                for kind, name in (("ConfigMap", "mkt-env"), ("Service", "mkt"), ("Deployment", "mkt")):
                    cluster.get(kind, name, "bench")

            calls, writes = len(emu.k.calls), len(emu.k.writes)
            unchanged()
            requests, wrote = len(emu.k.calls) - calls, len(emu.k.writes) - writes
            redeploy = time_call(unchanged, repeat=15)
            gets = time_call(three_gets, repeat=15)
            objs = m.team_objects(spec, "bench", image, 1)
            rendered = time_call(lambda: m.to_yaml(m.team_objects(spec, "bench", image, 1)), repeat=15)
            validated = time_call(lambda: (validate(objs, "1.30"), m.to_yaml(objs)), repeat=15)
            cluster.close()
    finally:
        ctl.stop()
        emu.stop()
    return [
        Row("k8s", "unchanged redeploy (kmock)", redeploy, "ms", "3 GETs of the objects", gets,
            "<=3x the GETs, no write", ok=redeploy <= 3 * gets and wrote == 0,
            extra={"api_requests": requests, "api_writes": wrote}),
        Row("k8s", "render + strict schema validation", validated, "ms", "render only", rendered, "<200 ms",
            ok=validated < 200),
    ]
