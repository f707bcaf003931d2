"""memory and cpu: the host (from /proc) and each team container against its own limits."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from elfctl.errors import ElfError
from elfctl.services.resources.containers import CPU_GAP_S, Containers
from elfctl.services.resources.status import Reading, mib, reading


def meminfo(path: str = "/proc/meminfo") -> tuple[int, int]:
    """(total, available) bytes; available is what the kernel can give without swapping."""
    values = {}
    with open(path) as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0]) * 1024
    return values["MemTotal"], values.get("MemAvailable", values.get("MemFree", 0))


def _cpu_times(path: str = "/proc/stat") -> tuple[int, int]:
    """(busy, total) jiffies of all cpus since boot."""
    with open(path) as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def memory(limits: tuple[float, float], containers: Callable[[], Containers | None]) -> list[Reading]:
    total, avail = meminfo()
    used = total - avail
    out = [reading("memory", "host", used / total * 100, limits, f"{mib(used)} used of {mib(total)}")]
    return out + _per_container("memory", containers, lambda s: reading(
        "memory", f"container:{s.name}", s.memory_used / s.memory_limit * 100 if s.memory_limit else None, limits,
        f"{mib(s.memory_used)} of {mib(s.memory_limit)}" + ("" if s.limited else " (no limit: the host's)"),
        team=s.team))


def cpu(limits: tuple[float, float], containers: Callable[[], Containers | None]) -> list[Reading]:
    busy0, total0 = _cpu_times()
    time.sleep(CPU_GAP_S)
    busy1, total1 = _cpu_times()
    share = (busy1 - busy0) / (total1 - total0) * 100 if total1 > total0 else None
    cpus = os.cpu_count() or 1
    out = [reading("cpu", "host", share, limits, f"{share or 0:.0f}% of {cpus} cpu(s) busy over {CPU_GAP_S:g}s")]
    return out + _per_container("cpu", containers, lambda s: reading(
        "cpu", f"container:{s.name}", None if s.cpu_cores is None else s.cpu_cores / s.cpu_limit * 100, limits,
        f"{s.cpu_cores or 0:.2f} of {s.cpu_limit:g} cpu(s)" + ("" if s.cpu_limited else " (no limit: the host's)"),
        team=s.team))


def _per_container(type_: str, containers, make) -> list[Reading]:
    sampler = containers()
    if sampler is None:
        return []
    try:
        return [make(s) for s in sampler.samples()]
    except ElfError as exc:
        return [Reading(type_, "containers", "unknown",
                        detail=f"team containers not read: {exc.message}")]
