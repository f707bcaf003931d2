"""The gateway's background prober: the process that runs all the time keeps deployed teams' entries
alive. Every `discovery.probe_period_s` it GETs the health path of each team deploy registered whose
last heartbeat is older than that period (probes.due: what another gateway, a registry read or
`health` probed lately is skipped) and records the answer as the team's heartbeat, so an idle healthy
team stays passing past its TTL and a dead one goes critical (a status change is a trail row).

Bounded: one thread with its own event loop, at most `discovery.probe_concurrency` probes at once,
each within the team's health timeout overall (a hung or trickling endpoint costs that, and the other
teams' heartbeats are written as their own answers come, not at the end of the round). No storm after
a restart: the first round waits a random part of a period (N gateways, or N workers, started together
spread out), and teams probed before the restart are not due again until their period has passed.

It also sweeps, once per period after its probes: an entry whose TTL ran out goes critical, and one
critical past its deregister_after is removed, on an idle platform too, each change one trail row
(actor `gateway sweep`). Several gateways on one store take turns: a period's probes and sweep run
under the store's `registry-prober` lock (a Postgres advisory lock, tried once, never waited for), so
the gateway that holds it probes a team while the others skip that period, and the team is not due
again for any of them until its period has passed. The sweep's changes are conditional updates, so a
transition is written once however many sweep at the same moment."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from elfctl.errors import ElfError, LockTimeout
from elfctl.services.registry import entries as reg
from elfctl.services.registry import probes

log = logging.getLogger("elfctl.gateway.prober")

ACTOR = "gateway probe"
SWEEP_ACTOR = "gateway sweep"
SWEEP_LIMIT = 500  # changes one sweep writes in one transaction; more wait for the next period
TURN_LOCK = "registry-prober"
ENDPOINTS = ("network", "host")  # tried in this order: the platform network, then the host's published port
MAX_TIMEOUT_S = 30.0  # a team.yaml timeout beyond this would hold a probe slot for long


class Unreachable(Exception):
    """None of the entry's endpoints resolves from this process: nothing to vouch for either way."""


Probe = Callable[[str, float], Awaitable[tuple[str, str]]]


class Prober:
    """`round()` probes what is due once; `start()` runs rounds every period on a daemon thread until
    `stop()`. `probe(url, timeout_s)` is adapters.http_health.probe (its Unresolved error means: try
    the entry's next endpoint)."""

    def __init__(self, store, probe: Probe, unresolved: type[Exception], period_s: float,
                 concurrency: int = 8, actor: str = ACTOR, jitter: Callable[[], float] = random.random):
        self.store, self.probe, self.unresolved = store, probe, unresolved
        self.period_s, self.concurrency, self.actor, self.jitter = period_s, max(1, concurrency), actor, jitter
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[str] = set()

    # --- one round ------------------------------------------------------------------------------

    def round(self) -> list[tuple[str, str, str]]:
        """Probe every due team, each answer its heartbeat. Returns [(name, outcome, note)]."""
        try:
            due = probes.due(self.store, self.period_s)
        except ElfError as exc:  # the store is down or not migrated: the next round tries again
            log.warning("registry prober: cannot read the registry: %s", exc.message)
            return []
        return asyncio.run(self._all(due)) if due else []

    async def _all(self, due) -> list[tuple[str, str, str]]:
        gate = asyncio.Semaphore(self.concurrency)
        done: list[tuple[str, str, str]] = []

        async def one(entry) -> None:
            async with gate:
                if self._stop.is_set():
                    return
                try:
                    outcome, note = await self._probe(entry)
                except Unreachable as exc:
                    if entry.name not in self._warned:  # once per team and process, not every period
                        self._warned.add(entry.name)
                        log.warning("registry prober: team %s not probed: %s", entry.name, exc)
                    return
            self._warned.discard(entry.name)
            if self._stop.is_set():  # the gateway is closing its store
                return
            try:
                await asyncio.to_thread(reg.heartbeat, self.store, entry.name, outcome, note, actor=self.actor)
            except reg.NotRegistered:
                return  # removed (team rm, deregister_after) while it was probed
            except ElfError as exc:
                log.warning("registry prober: heartbeat of %s not written: %s", entry.name, exc.message)
                return
            done.append((entry.name, outcome, note))

        await asyncio.gather(*(one(e) for e in due))
        return done

    async def _probe(self, entry) -> tuple[str, str]:
        path = entry.metadata.get("health_path") or "/health"
        timeout = min(float(entry.metadata.get("health_timeout_s") or 2.0), MAX_TIMEOUT_S)
        tried = []
        for where in ENDPOINTS:
            base = entry.endpoints.get(where) or (entry.url if where == "network" else None)
            if not base:
                continue
            url = base.rstrip("/") + path
            try:
                outcome, why = await self.probe(url, timeout)
            except self.unresolved as exc:
                tried.append(f"{where}: {exc}")
                continue
            return outcome, f"probe: GET {url}: {why}"
        raise Unreachable("; ".join(tried) or "it has no endpoint")

    # --- one period: probes, then the sweep, by one gateway at a time ------------------------------

    def turn(self) -> tuple[list[tuple[str, str, str]], tuple[list[str], list[tuple[str, str, str]]]]:
        """This period's round and sweep, when no other gateway is doing them: ([], ([], []))
        otherwise. Returns (probed, (removed, changed))."""
        with self._turn() as mine:
            if not mine:
                return [], ([], [])
            return self.round(), self.sweep()

    @contextmanager
    def _turn(self) -> Iterator[bool]:
        """True while this process holds the store's prober lock (Postgres: an advisory lock, released
        when the period's work is done or the process dies). SQLite has no such lock: its sweeps are
        serialised by its write lock, and two processes may probe one team in the same period. Nor has
        Supabase's REST API (no session to hold one): its sweep is one conditional function call per
        change (elfctl_registry_sweep), so a transition is still written once."""
        exclusive = getattr(self.store, "exclusive", None)
        if exclusive is None or getattr(self.store, "dialect", None) == "rest":
            yield True
            return
        held = exclusive(TURN_LOCK, 0)
        try:
            held.__enter__()
        except LockTimeout:  # another gateway is probing and sweeping this period
            yield False
            return
        except ElfError as exc:
            log.warning("registry prober: cannot take the prober lock: %s", exc.message)
            yield False
            return
        try:
            yield True
        finally:
            held.__exit__(None, None, None)

    def sweep(self) -> tuple[list[str], list[tuple[str, str, str]]]:
        """Expired TTLs made critical and entries past deregister_after removed, each a trail row."""
        try:
            return reg.sweep(self.store, SWEEP_ACTOR, limit=SWEEP_LIMIT)
        except ElfError as exc:
            log.warning("registry prober: sweep not done: %s", exc.message)
            return [], []

    # --- the thread ------------------------------------------------------------------------------

    def start(self) -> Prober:
        self._thread = threading.Thread(target=self._run, name="registry-prober", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        if self._stop.wait(self.jitter() * self.period_s):
            return
        while True:
            try:
                self.turn()
            except Exception:  # noqa: BLE001 - a bug must not end the prober for the process's life
                log.exception("registry prober: round failed")
            if self._stop.wait(self.period_s):
                return

    def stop(self, timeout_s: float = 5.0) -> None:
        """No new probe starts; the round under way ends within its probes' timeouts."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


def start(config, store) -> Prober | None:
    """The gateway's prober, started (None when `discovery.gateway_probes` is off)."""
    if not config.get("discovery.gateway_probes"):
        return None
    from elfctl.adapters import http_health

    return Prober(store, http_health.probe, http_health.Unresolved, config.get("discovery.probe_period_s"),
                  config.get("discovery.probe_concurrency")).start()
