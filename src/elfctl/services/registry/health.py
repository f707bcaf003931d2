"""`elfctl health`'s service-registry component: deployed teams probed when due, the sweep run,
then fail for a dependency that is missing or critical (something registered needs it), warn for
critical entries nothing depends on. (Named `service-registry`: `registry` is the image registry.)"""

from __future__ import annotations

from elfctl.domain.health import Check
from elfctl.errors import StoreNotMigrated

COMPONENT = "service-registry"


def registry_probe(app):
    def probe() -> Check:
        from elfctl.services.registry import app as svc

        try:
            svc.refresh(app)
        except StoreNotMigrated:
            return Check(COMPONENT, "warn", output="the store has no registry yet (migration 0090)",
                         hint="run `elfctl db migrate`")
        g = svc.dependency_graph(app.store)
        critical = sorted(n["name"] for n in g.nodes if n["status"] == "critical")
        if g.problems:
            edges = [f"{e['from']} -> {e['to']} ({e['status']})" for e in g.problems]
            return Check(COMPONENT, "fail", len(g.problems), "dangling_dependencies",
                         output="dependencies missing or critical: " + ", ".join(edges),
                         hint=f"`elfctl registry graph`; deploy or register {g.problems[0]['to']}")
        if critical:
            return Check(COMPONENT, "warn", len(critical), "critical_entries",
                         output="critical: " + ", ".join(critical),
                         hint=f"`elfctl registry show {critical[0]}`; it heartbeats again or is removed "
                              "after its deregister_after")
        return Check(COMPONENT, "pass", len(g.nodes), "entries",
                     output=f"{len(g.nodes)} entries, none critical, every dependency registered")

    return probe
