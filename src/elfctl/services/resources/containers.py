"""The team containers on the Docker engine, sampled once per measurement and shared by the memory,
cpu and docker types: memory used against the container's limit, cpu against its cpu limit.

Memory "used" is what `docker stats` shows: usage less the inactive file cache (reclaimable), so a
tmpfs or anonymous memory fills it and a read file does not. CPU needs two samples: the counters
are read twice, CPU_GAP_S apart, every container at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

CPU_GAP_S = 0.25


@dataclass
class Sample:
    name: str
    team: str
    memory_used: int
    memory_limit: int  # the container's limit, else the host's memory
    limited: bool  # whether the container has a memory limit of its own
    cpu_cores: float | None  # cores in use over the gap
    cpu_limit: float  # the container's cpu limit in cores, else the host's cpus
    cpu_limited: bool


def _memory(stats: dict) -> tuple[int, int]:
    mem = stats.get("memory_stats") or {}
    detail = mem.get("stats") or {}
    inactive = detail.get("inactive_file", detail.get("total_inactive_file", 0))
    return max(0, int(mem.get("usage") or 0) - int(inactive or 0)), int(mem.get("limit") or 0)


def _cpu(first: dict, second: dict) -> float | None:
    """Cores in use between two samples (total usage over system usage, times the online cpus)."""
    try:
        a, b = first["cpu_stats"], second["cpu_stats"]
        used = b["cpu_usage"]["total_usage"] - a["cpu_usage"]["total_usage"]
        system = b["system_cpu_usage"] - a["system_cpu_usage"]
        cpus = b.get("online_cpus") or len(b["cpu_usage"].get("percpu_usage") or []) or 1
    except (KeyError, TypeError):
        return None
    return used / system * cpus if system > 0 else None


class Containers:
    """Lazily sampled once (thread-safe): the first type that asks pays, the others wait for it."""

    def __init__(self, engine, prefix: str, host_memory: int, host_cpus: int):
        self.engine = engine
        self.prefix = prefix
        self.host_memory = host_memory
        self.host_cpus = host_cpus
        self._lock = threading.Lock()
        self._samples: list[Sample] | None = None
        self._error: BaseException | None = None

    def samples(self) -> list[Sample]:
        with self._lock:
            if self._samples is None and self._error is None:
                try:
                    self._samples = self._take()
                except BaseException as exc:  # noqa: BLE001 (each type reports it)
                    self._error = exc
            if self._error is not None:
                raise self._error
            return self._samples

    def _take(self) -> list[Sample]:
        found = self.engine.containers({"elfctl.prefix": self.prefix, "elfctl.role": "app"}, all_=False)
        first: dict[str, dict | None] = {}
        second: dict[str, dict | None] = {}
        hosts: dict[str, dict] = {}

        def twice(name: str, cid: str) -> None:
            first[name] = self.engine.stats(name, cid)
            t0 = time.monotonic()
            hosts[name] = (self.engine.inspect(name) or {}).get("HostConfig") or {}  # inside the gap, not after it
            time.sleep(max(0.0, CPU_GAP_S - (time.monotonic() - t0)))
            second[name] = self.engine.stats(name, cid)

        names = [c["Names"][0].lstrip("/") for c in found]
        threads = [threading.Thread(target=twice, args=(n, c["Id"]), daemon=True) for n, c in zip(names, found, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(self.engine.timeout_s + 2 * CPU_GAP_S)
        out = []
        for c, name in zip(found, names, strict=True):
            a, b = first.get(name), second.get(name)
            if not b:
                continue  # gone meanwhile, or no answer: the next round sees it
            host = hosts.get(name) or {}
            used, limit = _memory(b)
            mem_limit = host.get("Memory") or 0
            nano = host.get("NanoCpus") or 0
            out.append(Sample(name, (c.get("Labels") or {}).get("elfctl.team", ""), used,
                              mem_limit or limit or self.host_memory, bool(mem_limit),
                              _cpu(a, b) if a else None, nano / 1e9 if nano else float(self.host_cpus),
                              bool(nano)))
        return out
