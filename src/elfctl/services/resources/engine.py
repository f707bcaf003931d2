"""docker: the engine answers, the team containers against their memory limits, and the disk that
holds images and volumes (Docker's root dir's filesystem)."""

from __future__ import annotations

import os
import time

from elfctl.errors import ElfError
from elfctl.services.resources.containers import Containers
from elfctl.services.resources.status import Reading, mib, reading


def docker(limits: tuple[float, float], engine, containers: Containers) -> list[Reading]:
    t0 = time.perf_counter()
    try:
        info = engine.info()  # answers as ping does, with the version and the root dir in one call
    except ElfError as exc:
        return [Reading("docker", "engine", "critical", detail=f"engine not answering: {exc.message}")]
    out = [Reading("docker", "engine", "healthy", detail=f"Docker {info.get('ServerVersion', '?')} answers",
                   latency_ms=round((time.perf_counter() - t0) * 1000, 1))]
    for s in containers.samples():
        if s.limited:
            out.append(reading("docker", f"container:{s.name}", s.memory_used / s.memory_limit * 100, limits,
                               f"{mib(s.memory_used)} of its {mib(s.memory_limit)} memory limit", team=s.team))
    # The filesystem holding images and volumes, from statvfs. Not Docker's /system/df: it sizes every
    # image, container and volume, 0.2 s on a quiet engine and past the resources timeout on a busy one.
    root = info.get("DockerRootDir") or "/var/lib/docker"
    try:
        fs = os.statvfs(root)
    except OSError as exc:  # a remote engine's root dir is not on this host
        return out + [Reading("docker", "disk", "unknown", detail=f"disk use not read: {exc}")]
    total = fs.f_blocks * fs.f_frsize
    used = total - fs.f_bavail * fs.f_frsize
    out.append(reading("docker", "disk", used / total * 100 if total else None, limits,
                       f"{mib(used)} used of {mib(total)} at {root} (images, containers and volumes)"))
    return out
