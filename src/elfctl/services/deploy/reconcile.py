"""The history told true after a deploy that stopped half-way (kill -9, a lost lease, a store that
refused the last write): its rows in progress are settled against what the target serves.

Under the team's lease, a row still in progress can only belong to a deploy that is gone (the
lease is taken over only from an expired or dead holder, and fencing stops a holder that lost it
from writing). Such a row becomes `switched` when its revision is what serves (the one it
replaced becomes `superseded`), else `interrupted`. One function, `settle`, used by `deploy` and
`rollback` (under their lease) and, through `settle_all`, by `deployments` and `infra up`.
"""

from __future__ import annotations

import json

from elfctl.domain.clock import iso, now
from elfctl.errors import LockTimeout
from elfctl.services.deploy.lock import Lease, lease

IN_PROGRESS = ("pending", "building", "pushing", "starting", "verifying")
IN_PROGRESS_SQL = ", ".join(f"'{s}'" for s in IN_PROGRESS)


def _serving_row(rows: list[dict], current: dict | None, image: str | None, revision: int | None) -> dict | None:
    """The row in progress that serves: by the revision the target reports, else (a target that
    reports none) the newest row of the serving image when the recorded current one is not it."""
    if revision is not None:
        return next((r for r in rows if int(r["revision"]) == revision), None)
    if image is None or (current and current["image"] == image):
        return None
    return next((r for r in rows if r["image"] == image), None)


def settle(held: Lease, target) -> list[str]:
    """Settle the team's rows in progress (see the module doc). Returns one line per row changed."""
    store, team = held.store, held.team
    rows = store.query(
        f"SELECT id, revision, image, state, details FROM deployments WHERE team = ? AND target = ? "
        f"AND state IN ({IN_PROGRESS_SQL}) ORDER BY revision DESC",
        (team, target.name),
    )
    if not rows:
        return []
    st = target.status(team)
    # A cluster reports the revision as an annotation ("" when none) and the image pinned by digest.
    image = (st.get("image") or "").split("@")[0] or None
    revision = int(st["revision"]) if str(st.get("revision") or "").isdigit() else None
    current = store.query(
        "SELECT id, revision, image FROM deployments WHERE team = ? AND state = 'switched' "
        "ORDER BY revision DESC LIMIT 1",
        (team,),
    )
    live = _serving_row(rows, current[0] if current else None, image, revision)
    serves = f"revision {revision} serves" if revision is not None else (
        f"{image} serves" if image else "nothing serves")
    stamp, lines = iso(now()), []
    with held.write() as tx:
        for row in rows:
            details = json.loads(row["details"] or "{}")
            if row is live:
                details["reconciled"] = (f"its deploy stopped in state {row['state']} after the switch "
                                         f"(killed, or its record could not be written); found serving")
                tx.execute(
                    "UPDATE deployments SET state = 'superseded', updated_at = ? WHERE team = ? AND "
                    "state = 'switched' AND id <> ?",
                    (stamp, team, row["id"]),
                )
                tx.execute(
                    "UPDATE deployments SET state = 'switched', details = ?, updated_at = ?, finished_at = ? "
                    "WHERE id = ?",
                    (json.dumps(details), stamp, stamp, row["id"]),
                )
                lines.append(f"revision {row['revision']}: recorded switched (it serves; its deploy stopped "
                             f"in state {row['state']})")
                continue
            error = (f"interrupted: its deploy stopped in state {row['state']} (killed, or it lost the "
                     f"deploy lease); {serves}")
            details["reconciled"] = error
            tx.execute(
                "UPDATE deployments SET state = 'interrupted', error = ?, details = ?, updated_at = ?, "
                "finished_at = ? WHERE id = ?",
                (error, json.dumps(details), stamp, stamp, row["id"]),
            )
            lines.append(f"revision {row['revision']}: recorded interrupted (stopped in state {row['state']}; "
                         f"{serves})")
    return [f"team {team} " + line for line in lines]


def settle_all(store, target, owner: str, ttl_s: float, team: str | None = None) -> list[str]:
    """`settle` every team (or one) with rows in progress on this target whose deploy is gone: the
    team's lease is taken (only from an expired or dead holder); a team whose deploy is alive and
    holding it is left as it is: its rows are truly in progress."""
    sql = f"SELECT DISTINCT team FROM deployments WHERE target = ? AND state IN ({IN_PROGRESS_SQL})"
    params: tuple = (target.name,)
    if team is not None:
        sql, params = sql + " AND team = ?", (*params, team)
    lines: list[str] = []
    for row in store.query(sql, params):
        try:
            with lease(store, row["team"], owner, ttl_s=ttl_s, wait_s=0) as held:
                lines += settle(held, target)
        except LockTimeout:
            continue
    return lines
