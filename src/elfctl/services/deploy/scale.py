"""scale_down and restore: the platform lowers a team's replicas by one through the deploy target
(never below 1) when a resource it uses is critical, and brings them back once it has recovered.

The count to come back to is kept in the store (`scaled_teams`, migration 0085): the first scale
down remembers what ran, later ones keep that, restore returns to it and forgets it. Each scale down
writes its intent there before touching the target and its outcome to the trail after; one killed in
between is completed by the next scale down or restore. A deploy in
between runs the team.yaml's count again; restore then finds nothing to raise and just forgets.
Each change is one row of the actions trail (services/actions/trail.py); a no-op is none. Both hold
the team's deploy lease while they act, so two monitors (or a monitor and a deploy) never change a team
at once: the second sees the first's change and does not repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from elfctl.domain.clock import iso, now
from elfctl.errors import ElfError
from elfctl.services.actions import trail

ACTOR = "resources --apply"


@dataclass
class Scaled:
    team: str
    before: int
    after: int
    changed: bool
    result: str  # what happened, in words (also the trail row's result)


def _desired(target, team: str) -> int:
    return int(target.status(team).get("desired") or 0)


def _remembered(store, team: str) -> dict | None:
    rows = store.query("SELECT original_replicas, replicas, resource, scaled_at FROM scaled_teams WHERE team = ?",
                       (team,))
    return rows[0] if rows else None


def _interrupted(store, team: str, kept: dict) -> bool:
    """Whether the last scale down of `team` wrote its intent and then ended (kill -9, power loss)
    before recording its outcome: no scale_down row of the team in the trail since the intent."""
    return not store.query("SELECT 1 FROM platform_actions WHERE team = ? AND strategy = 'scale_down' AND ts >= ?",
                           (team, kept["scaled_at"]))


def _finish(store, target, team: str, kept: dict, current: int, actor: str) -> Scaled:
    """Complete a scale down that was interrupted: lower the team to the count its intent names if it
    still runs more, else (the target had scaled) record what the lost process did not. A scale to the
    count that runs lets the Docker target remove a replica the killed process took out of the proxy
    but did not get to stop."""
    want = int(kept["replicas"])
    action = trail.Action(kept["resource"], f"{kept['resource']} critical (a scale down interrupted before it "
                          "was recorded, completed)", "scale_down", "", actor, team, f"{target.name}:{team}")
    try:
        before = target.scale(team, want if current > want else current)
    except ElfError as exc:
        trail.record(store, replace(action, result=f"failed: {exc.message}"))
        raise
    after = min(current, want)
    result = f"ok: {max(before, want + 1)} -> {after} replicas"
    with store.transaction() as tx:
        tx.execute("UPDATE scaled_teams SET replicas = ? WHERE team = ?", (after, team))
        trail.record(tx, replace(action, result=result))
    return Scaled(team, max(before, want + 1), after, True, result)


def down(store, target, team: str, resource: str = "manual", trigger: str = "", actor: str = ACTOR) -> Scaled:
    """One replica fewer, never below 1. A run that was killed half-way is completed instead."""
    current = _desired(target, team)
    kept = _remembered(store, team)
    if kept is not None and _interrupted(store, team, kept):
        return _finish(store, target, team, kept, current, actor)
    if current <= 1:
        return Scaled(team, current, current, False, f"not scaled: {team} runs {current} replica(s), the minimum")
    action = trail.Action(resource, trigger or f"{resource} critical", "scale_down", "", actor, team,
                          f"{target.name}:{team}")
    # The intent (the count to come back to, the count to go to, when) is written before the target is
    # touched, its outcome (the trail row) after: a process killed in between leaves an intent with no
    # outcome, which the next scale down or restore completes (_finish), never a team left scaled down
    # with nothing remembered or nothing in the trail.
    with store.transaction() as tx:
        fresh = _remembered(tx, team) is None
        if fresh:
            tx.execute("INSERT INTO scaled_teams (team, target, original_replicas, replicas, resource, scaled_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (team, target.name, current, current - 1, resource, iso(now())))
        else:
            tx.execute("UPDATE scaled_teams SET replicas = ?, scaled_at = ? WHERE team = ?",
                       (current - 1, iso(now()), team))
    try:
        before = target.scale(team, current - 1)
    except ElfError as exc:
        with store.transaction() as tx:
            if fresh:
                tx.execute("DELETE FROM scaled_teams WHERE team = ?", (team,))
            else:
                tx.execute("UPDATE scaled_teams SET replicas = ? WHERE team = ?", (current, team))
            trail.record(tx, replace(action, result=f"failed: {exc.message}"))
        raise
    result = f"ok: {before} -> {current - 1} replicas"
    trail.record(store, replace(action, result=result))
    return Scaled(team, before, current - 1, True, result)


def up(store, target, team: str, trigger: str = "", actor: str = ACTOR) -> Scaled | None:
    """Back to the remembered count; None when the platform did not scale the team down. Its intent
    (`replicas` set to the count to come back to) is written before the target is touched: a restore
    killed half-way is completed by the next one, which first retires what the killed one started but
    never served."""
    kept = _remembered(store, team)
    if kept is None:
        return None
    if _interrupted(store, team, kept):  # its scale down first, so the trail has both
        _finish(store, target, team, kept, _desired(target, team), actor)
    want = int(kept["original_replicas"])
    resumed = int(kept["replicas"]) == want  # the intent of a restore that recorded no outcome
    action = trail.Action(kept["resource"], trigger or f"{kept['resource']} recovered", "restore", "", actor, team,
                          f"{target.name}:{team}")
    try:
        current = _desired(target, team)
        if resumed and current > 0:  # the count that serves: the Docker target retires unserved replicas
            target.scale(team, current)
        if 0 < current < want:
            with store.transaction() as tx:
                tx.execute("UPDATE scaled_teams SET replicas = ? WHERE team = ?", (want, team))
            before = target.scale(team, want)
        else:
            before = current
    except ElfError as exc:
        trail.record(store, replace(action, result=f"failed: {exc.message}"))
        raise
    if resumed and current == want:  # the killed restore had scaled the target: record what it did
        changed, result = True, f"ok: {want} replicas (a restore interrupted before it was recorded, completed)"
    else:
        changed = before != want and current > 0
        result = f"ok: {before} -> {want} replicas" if changed else \
            f"nothing to raise: {team} runs {current} replica(s) (deployed since, or gone)"
    with store.transaction() as tx:
        tx.execute("DELETE FROM scaled_teams WHERE team = ?", (team,))
        trail.record(tx, replace(action, result=result))
    return Scaled(team, before, want if changed else current, changed, result)


def scaled(store) -> list[dict]:
    """The teams running below their count, with what to restore."""
    return store.query("SELECT team, target, original_replicas, replicas, resource, scaled_at FROM scaled_teams "
                       "ORDER BY team")


def _lease(app, team: str, actor: str):
    """The team's deploy lease (services/deploy/lock.py): a scale and a deploy, or two monitors
    applying at once, change a team one at a time; a killed holder's lease is taken over."""
    from elfctl.services.deploy.lock import lease

    ttl = app.config.get("deploy.lock_ttl_s")
    return lease(app.store, team, actor, ttl_s=ttl, wait_s=max(ttl, app.config.get("deploy.lock_wait_s")))


def scale_down(app, team: str, resource: str = "manual", trigger: str = "", actor: str = ACTOR,
               since: str | None = None) -> Scaled:
    """`since`: when the caller measured the resource (ISO time). A scale down recorded after that
    (another monitor acted on the same reading while this one waited for the lease) is not repeated."""
    with _lease(app, team, actor):
        kept = _remembered(app.store, team)
        if since and kept is not None and kept["scaled_at"] > since and not _interrupted(app.store, team, kept):
            n = int(kept["replicas"])
            return Scaled(team, n, n, False, f"done already: scaled down to {n} replica(s) at {kept['scaled_at']} "
                                             "by another monitor")
        return down(app.store, app.target, team, resource, trigger, actor)


def restore(app, team: str, trigger: str = "", actor: str = ACTOR) -> Scaled | None:
    """None when there is nothing to restore (never scaled down, or another monitor restored it)."""
    with _lease(app, team, actor):
        return up(app.store, app.target, team, trigger, actor)
