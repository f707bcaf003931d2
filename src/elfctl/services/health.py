"""Run health checks concurrently, each with its own timeout: a dead component is a `fail`
within its timeout, never a hung command."""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable

from elfctl.domain.health import Check, HealthReport
from elfctl.errors import ElfError

# A probe returns a Check (component name filled in by the runner if empty).
Probe = Callable[[], Check]


def run_checks(probes: dict[str, Probe], timeout_s: float) -> HealthReport:
    pool = cf.ThreadPoolExecutor(max_workers=max(1, len(probes)), thread_name_prefix="health")
    started = {name: time.perf_counter() for name in probes}
    futures = {name: pool.submit(probe) for name, probe in probes.items()}
    deadline = time.monotonic() + timeout_s
    checks: list[Check] = []
    for name, fut in futures.items():
        try:
            check = fut.result(timeout=max(0.0, deadline - time.monotonic()))
        except cf.TimeoutError:
            check = Check(name, "fail", output=f"no answer within {timeout_s:g}s",
                          hint="the component hangs; check it directly")
        except ElfError as exc:
            check = Check(name, "fail", output=exc.message, hint=exc.hint)
        except Exception as exc:  # a probe bug must not hide the other results
            check = Check(name, "fail", output=f"{type(exc).__name__}: {exc}")
        check.component = check.component or name
        if check.latency_ms is None:
            check.latency_ms = (time.perf_counter() - started[name]) * 1000
        checks.append(check)
    # Do not wait for hung probes: their threads are daemon-like and die with the process.
    pool.shutdown(wait=False, cancel_futures=True)
    return HealthReport(checks)


def store_probe(open_store: Callable[[], object], migrations_dir) -> Probe:
    """Connect, compare the schema version with the newest migration, write and read back."""

    def probe() -> Check:
        from elfctl.services import migrate

        store = open_store()
        st = migrate.status(store, migrations_dir)
        if st.current_version < st.latest_version:
            return Check("store", "fail", st.current_version, "schema_version",
                         output=f"{store.display_url}: schema at {st.current_version}, "
                                f"files up to {st.latest_version} ({st.pending} pending)",
                         hint="run `elfctl db migrate`")
        drifted = [m.file for m in st.migrations if m.state in ("drifted", "missing_file")]
        if drifted:
            return Check("store", "fail", st.current_version, "schema_version",
                         output=f"applied migrations changed: {', '.join(drifted)}",
                         hint="run `elfctl db verify`")
        marker = f"health-{time.time_ns()}"
        with store.transaction() as tx:
            tx.execute(
                "INSERT INTO breaker_state (name, state, updated_at) VALUES (?, 'closed', ?)",
                ("__health__", marker),
            )
            back = tx.query("SELECT updated_at FROM breaker_state WHERE name = ?", ("__health__",))
            tx.execute("DELETE FROM breaker_state WHERE name = ?", ("__health__",))
        if not back or back[0]["updated_at"] != marker:
            return Check("store", "fail", output="write then read back returned another value")
        return Check("store", "pass", st.current_version, "schema_version",
                     output=f"{store.server_version()} at {store.display_url}")

    return probe
