"""Retiring replaced containers off the deploy's critical path: a detached process stops and removes
them after the drain, so a deploy returns as soon as the new version serves."""

from __future__ import annotations

import os
import time

from elfctl.errors import ElfError


def retire_later(engine, names: list[str], after_s: float, grace_s: int) -> bool:
    """A detached process waits `after_s`, then for each container turns its restart policy off,
    stops it (SIGTERM, SIGKILL after grace_s) and removes it. The caller returns at once. Each call
    keeps the engine's timeouts, so the helper ends within after_s + grace_s + a few call timeouts.
    Nothing depends on it finishing: a container it did not get to is removed by the next rollout
    as a leftover. False when this platform cannot detach (no fork): the caller then does the work
    itself."""
    if not names or not hasattr(os, "fork"):
        return False
    import warnings

    with warnings.catch_warnings():  # 3.12+ warns about forking a threaded process: see below
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            pid = os.fork()
        except OSError:
            return False
    if pid:
        os.waitpid(pid, 0)  # the first child exits at once; the grandchild is re-parented
        return True
    # Child: only fork-safe work (no lock another thread may hold: no store, no logging, no
    # output), and never return into the caller's code.
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)  # release the caller's pipes: whoever waits for their EOF goes on
        os.closerange(3, 65536)  # and its sockets (the parent's connections stay the parent's)
        time.sleep(after_s)
        # A client of its own: the parent's connections were closed above.
        helper = type(engine)(engine.base_url, timeout_s=engine.timeout_s + grace_s)
        for n in names:
            try:
                helper.no_restart(n)
                helper.remove(n, grace_s=grace_s)
            except ElfError:
                pass
    finally:
        os._exit(0)
