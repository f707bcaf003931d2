"""Run health checks concurrently, each with its own timeout: a dead component is a `fail`
within its timeout, never a hung command."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from elfctl.domain.health import Check, HealthReport
from elfctl.errors import ElfError

# A probe returns a Check (component name filled in by the runner if empty).
Probe = Callable[[], Check]


TIMED_OUT = object()  # run_concurrently's outcome for a function that did not return in time


def run_concurrently(fns: dict[str, Callable[[], object]], timeout_s: float) -> dict[str, tuple[object, float]]:
    """Run every function in its own daemon thread; {name: (its result, or the exception it raised,
    or TIMED_OUT; ms since the start)} once each answered or `timeout_s` passed. Daemon threads
    matter: a hung function must not keep the process alive at exit either. Health checks and the
    resource monitor (services/resources) both run this way."""
    results: dict[str, object] = {}
    took: dict[str, float] = {}
    done = {name: threading.Event() for name in fns}
    started = time.perf_counter()

    def runner(name: str, fn: Callable[[], object]) -> None:
        try:
            results[name] = fn()
        except BaseException as exc:  # noqa: BLE001  (reported as the outcome)
            results[name] = exc
        finally:
            took[name] = (time.perf_counter() - started) * 1000
            done[name].set()

    for name, fn in fns.items():
        threading.Thread(target=runner, args=(name, fn), name=f"run-{name}", daemon=True).start()
    deadline = time.monotonic() + timeout_s
    out: dict[str, tuple[object, float]] = {}
    for name in fns:
        if done[name].wait(max(0.0, deadline - time.monotonic())):
            out[name] = (results[name], took[name])
        else:
            out[name] = (TIMED_OUT, timeout_s * 1000)
    return out


def run_checks(probes: dict[str, Probe], timeout_s: float) -> HealthReport:
    """Run every probe concurrently; what did not answer within `timeout_s` is a `fail`."""
    checks: list[Check] = []
    for name, (outcome, ms) in run_concurrently(probes, timeout_s).items():
        if outcome is TIMED_OUT:
            checks.append(Check(name, "fail", output=f"no answer within {timeout_s:g}s",
                                hint="the component hangs; check it directly", latency_ms=timeout_s * 1000))
            continue
        if isinstance(outcome, ElfError):
            check = Check(name, "fail", output=outcome.message, hint=outcome.hint)
        elif isinstance(outcome, BaseException):
            check = Check(name, "fail", output=f"{type(outcome).__name__}: {outcome}")
        else:
            check = outcome
        check.component = check.component or name
        if check.latency_ms is None:
            check.latency_ms = ms
        checks.append(check)
    return HealthReport(checks)


def store_probe(open_store: Callable[[], object], migrations_dir) -> Probe:
    """Connect, compare the schema version with the newest migration, write and read back (over
    Supabase's REST API, which has no SQL: the version read and the API's own description)."""

    def probe() -> Check:
        from elfctl.services.platform import migrate

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
        if store.dialect == "rest":  # no SQL over REST: the status read above was the round trip
            return Check("store", "pass", st.current_version, "schema_version",
                         output=f"{store.server_version()} at {store.display_url}")
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


def disk_probe(path, warn_free: float, fail_free: float) -> Probe:
    """Free space on the filesystem holding the project (store, spools, images)."""

    def probe() -> Check:
        import shutil

        usage = shutil.disk_usage(path)
        free = usage.free / usage.total
        status = "fail" if free < fail_free else "warn" if free < warn_free else "pass"
        return Check("disk", status, round(free * 100, 1), "percent_free",
                     output=f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB at {path}",
                     hint=None if status == "pass" else "free disk space (old images: `docker image prune`)")

    return probe


def memory_probe(warn_free: float, fail_free: float, meminfo: str = "/proc/meminfo") -> Probe:
    """Available memory of the host (MemAvailable, what the kernel can give without swapping)."""

    def probe() -> Check:
        values = {}
        with open(meminfo) as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                values[key] = int(rest.split()[0]) * 1024
        total, avail = values["MemTotal"], values.get("MemAvailable", values.get("MemFree", 0))
        free = avail / total
        status = "fail" if free < fail_free else "warn" if free < warn_free else "pass"
        return Check("memory", status, round(free * 100, 1), "percent_available",
                     output=f"{avail / 2**30:.1f} GiB available of {total / 2**30:.1f} GiB",
                     hint=None if status == "pass" else "stop idle teams or add memory")

    return probe


# The resource monitor's statuses as health statuses (services/resources): unknown and not
# configured say nothing is wrong.
RESOURCE_STATUS = {"healthy": "pass", "warning": "warn", "critical": "fail", "exhausted": "fail",
                   "unknown": "pass", "not_configured": "pass"}


def readings_probe(component: str, measure: Callable[[], list]) -> Probe:
    """A component fed by one resource type of `elfctl resources`: its worst reading decides, every
    reading not healthy is named."""

    def probe() -> Check:
        from elfctl.domain.health import worst

        readings = measure()
        status = worst(RESOURCE_STATUS[r.status] for r in readings)
        shown = [r for r in readings if r.status not in ("healthy", "unknown", "not_configured")] or readings
        output = "; ".join(f"{r.subject} {r.status}: {r.detail}" for r in shown)
        top = max((r.value for r in readings if r.value is not None), default=None)
        return Check(component, status, top, "percent_of_limit" if top is not None else None, output=output,
                     hint=None if status == "pass" else "`elfctl resources` shows every reading and what "
                                                        "its policy does")

    return probe
