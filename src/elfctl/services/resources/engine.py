"""docker: the engine answers, the team containers against their memory limits, and the disk that
holds images and volumes (Docker's root dir's filesystem; df's image and volume sizes named)."""

from __future__ import annotations

import os
import time

from elfctl.errors import ElfError
from elfctl.services.resources.containers import Containers
from elfctl.services.resources.status import Reading, mib, reading


def docker(limits: tuple[float, float], engine, containers: Containers) -> list[Reading]:
    t0 = time.perf_counter()
    try:
        version = engine.ping()
    except ElfError as exc:
        return [Reading("docker", "engine", "critical", detail=f"engine not answering: {exc.message}")]
    out = [Reading("docker", "engine", "healthy", detail=f"Docker {version} answers",
                   latency_ms=round((time.perf_counter() - t0) * 1000, 1))]
    for s in containers.samples():
        if s.limited:
            out.append(reading("docker", f"container:{s.name}", s.memory_used / s.memory_limit * 100, limits,
                               f"{mib(s.memory_used)} of its {mib(s.memory_limit)} memory limit", team=s.team))
    try:
        root = engine.info().get("DockerRootDir") or "/var/lib/docker"
        df = engine.disk_usage()
        fs = os.statvfs(root)
    except (ElfError, OSError) as exc:
        return out + [Reading("docker", "disk", "unknown", detail=f"disk use not read: {exc}")]
    total = fs.f_blocks * fs.f_frsize
    used = total - fs.f_bavail * fs.f_frsize
    volumes = sum(max(0, ((v.get("UsageData") or {}).get("Size") or 0)) for v in df.get("Volumes") or [])
    out.append(reading("docker", "disk", used / total * 100 if total else None, limits,
                       f"{mib(used)} used of {mib(total)} at {root} (images {mib(df.get('LayersSize') or 0)}, "
                       f"volumes {mib(volumes)})"))
    return out
