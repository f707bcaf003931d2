"""Which program on this machine listens on a TCP port: read from /proc (Linux), for an error that
names what holds a port a team wants. Best effort: None when it cannot tell (another OS, a process of
another user, or the port is held in another network namespace)."""

from __future__ import annotations

import os
from pathlib import Path

LISTEN = "0A"  # the TCP state in /proc/net/tcp


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """"NAME (pid N)" of a process listening on `port`, or None."""
    inodes = {f"socket:[{i}]" for i in _listening_inodes(port, proc)}
    if not inodes:
        return None
    for pid in sorted((p for p in os.listdir(proc) if p.isdigit()), key=int):
        try:
            fds = os.listdir(proc / pid / "fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(proc / pid / "fd" / fd)
            except OSError:
                continue
            if link in inodes:
                try:
                    name = (proc / pid / "comm").read_text().strip()
                except OSError:
                    name = "a process"
                return f"{name} (pid {pid})"
    return None
