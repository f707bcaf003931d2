"""Ship a team: build (by content hash), push, roll out on a DeployTarget behind its health gate,
record every step as a state machine row, roll back to an earlier revision. Target-independent:
Docker and Kubernetes differ only in the `target` handed in.

States: pending -> building -> pushing -> starting -> verifying -> switched, or failed (nothing was
serving, or it broke before the rollout), or rolled_back (the new version was refused and the old
one kept serving). A later switched deployment marks the previous one superseded. A deploy that
stopped half-way (killed, lost its lease) is settled by the next one (services/deploy/reconcile.py):
`switched` when its revision serves, else `interrupted`.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from elfctl.domain.clock import iso, now
from elfctl.domain.health_gate import DEFAULT_WINDOW_S
from elfctl.errors import ElfError, InputError, LeaseLost
from elfctl.services.deploy import gateway_env, images
from elfctl.services.deploy.lock import Lease, lease
from elfctl.services.deploy.reconcile import settle

SUCCESS = ("switched", "superseded")


@dataclass
class DeployOptions:
    tag: str | None = None
    no_build: bool = False
    wait: bool = True  # False: return once switched, without the verification window
    soak_s: float = DEFAULT_WINDOW_S  # the verification window of teams whose team.yaml sets none
    timeout_s: float = 120.0
    dry_run: bool = False
    lock_wait_s: float = 0.0
    lock_ttl_s: float = 30.0
    keep_images: int = 5
    secret_versions: str = ""  # "NAME@scope:v3,..." of the credentials injected (names, never values)
    gateway_url: str = ""  # the LLM gateway as teams reach it: each revision gets a key (empty: none)


@dataclass
class DeployResult:
    team: str
    changed: bool
    state: str  # switched | unchanged | failed | rolled_back | planned
    image: str
    revision: int | None = None
    digest: str | None = None
    reason: str = ""
    warnings: list[str] = field(default_factory=list)
    logs: str = ""
    built: bool = False
    pushed: bool = False
    commit: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.state in ("failed", "rolled_back") else 0


def who() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def history(store, team: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    sql = (
        "SELECT id, team, revision, state, target, image, digest, who, started_at, updated_at, finished_at, "
        "error, details FROM deployments"
    )
    params: tuple = ()
    if team:
        sql += " WHERE team = ?"
        params = (team,)
    rows = store.query(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    for row in rows:
        row["details"] = json.loads(row["details"]) if row.get("details") else {}
    return rows


def _current(store, team: str) -> dict | None:
    rows = store.query(
        "SELECT * FROM deployments WHERE team = ? AND state = 'switched' ORDER BY revision DESC LIMIT 1",
        (team,),
    )
    if rows:
        rows[0]["details"] = json.loads(rows[0]["details"] or "{}")
    return rows[0] if rows else None


class _Record:
    """One deployments row, moved through its states; every write is fenced by the deploy's lease."""

    def __init__(self, store, team: str, target: str, image: str, details: dict, held: Lease):
        self.store, self.details, self.t0, self.held = store, details, time.monotonic(), held
        stamp = iso(now())
        with held.write() as tx:
            rev = tx.query("SELECT COALESCE(MAX(revision), 0) AS r FROM deployments WHERE team = ?", (team,))[
                0
            ]["r"]
            self.revision = int(rev) + 1
            tx.execute(
                "INSERT INTO deployments (team, revision, state, target, image, who, started_at, updated_at, "
                "details) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                (team, self.revision, target, image, who(), stamp, stamp, json.dumps(details)),
            )
            self.id = tx.query(
                "SELECT id FROM deployments WHERE team = ? AND revision = ?", (team, self.revision)
            )[0]["id"]
        self.team = team
        self.phase_started = time.monotonic()
        self.state = "pending"

    def note(self, **cols: Any) -> None:
        """Record columns without changing state."""
        cols["updated_at"] = iso(now())
        with self.held.write() as tx:
            tx.execute(
                f"UPDATE deployments SET {', '.join(f'{k} = ?' for k in cols)} WHERE id = ?",
                (*cols.values(), self.id),
            )

    def move(self, state: str, **cols: Any) -> None:
        """Write the new state; self.state follows only once written (a failed write can be retried)."""
        t = time.monotonic()
        details = {**self.details, "timings": {**self.details.get("timings", {}),
                                               self.state: round(t - self.phase_started, 3)}}
        final = state in ("switched", "failed", "rolled_back")
        sets = {"state": state, "updated_at": iso(now()), "details": json.dumps(details), **cols}
        if final:
            sets["finished_at"] = sets["updated_at"]
        with self.held.write() as tx:
            if state == "switched":
                tx.execute(
                    "UPDATE deployments SET state = 'superseded', updated_at = ? WHERE team = ? AND "
                    "state = 'switched' AND id <> ?",
                    (sets["updated_at"], self.team, self.id),
                )
            tx.execute(
                f"UPDATE deployments SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                (*sets.values(), self.id),
            )
        self.details["timings"] = details["timings"]
        self.phase_started, self.state = t, state


def _record_switch(rec: _Record) -> str | None:
    """The new version serves: write that, retrying a locked or unreachable store for as long as the
    lease stands (until it expires nobody else can deploy the team, so the late write is still true;
    after, fencing forbids it). Returns None once written, else why not: the row then stays in
    progress, and the next deploy, `deployments` or `infra up` records it switched (reconcile.py)."""
    while True:
        try:
            rec.move("switched")
            return None
        except LeaseLost as exc:
            return exc.message
        except ElfError:
            time.sleep(0.2)  # each attempt already waited the store's own busy timeout


class _Push:
    """The registry push, run beside the rollout: a target that takes `before_switch` starts and
    gate-checks the new version from the local image meanwhile, and switches only once the push
    succeeded. A failed push then refuses the switch (the old version keeps serving) and is raised
    as if it had run first."""

    def __init__(self, engine, registry, repo: str, tag: str):
        self.digest: str | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0

        def run() -> None:
            t0 = time.monotonic()
            try:
                self.digest = engine.push(repo, tag) or registry.digest(repo, tag)
            except BaseException as exc:  # handed to the waiting thread by wait()
                self.error = exc
            self.seconds = round(time.monotonic() - t0, 3)

        self.thread = threading.Thread(target=run, name=f"push-{tag}", daemon=True)
        self.thread.start()

    def wait(self) -> str | None:
        self.thread.join()  # the push has its own hard timeout (docker.build_timeout_s)
        if self.error is not None:
            raise self.error
        return self.digest


def _rollout(
    store,
    engine,
    target,
    spec,
    repo: str,
    tag: str,
    rec: _Record,
    opts: DeployOptions,
    serving: str | None,
    result: DeployResult,
    env: dict,
    secrets: dict,
    push: _Push | None = None,
) -> DeployResult:
    image = f"{repo}:{tag}"
    if target.needs_local_image:  # a cluster pulls from the registry itself
        images.ensure_local(engine, repo, tag)
    rec.move("starting")
    target.set_progress(lambda phase: rec.move(phase) if phase == "verifying" else None)
    soak_s = (spec.health.soak_s if spec.health.soak_s is not None else opts.soak_s) if opts.wait else 0.0
    run_spec = dataclasses.replace(spec, health=dataclasses.replace(spec.health, soak_s=soak_s))
    # A cluster's nodes must pull exactly what was pushed: such targets get the image by digest.
    pinned = f"{image}@{result.digest}" if target.pins_digest and result.digest else image

    def before_switch() -> None:  # the target calls this right before anything serves the new version
        if push is not None:
            result.digest = push.wait()
            rec.details["timings"]["push"] = push.seconds
        rec.held.renew()  # the fence: a deploy that lost its lease never switches
        if push is not None:
            rec.note(digest=result.digest)

    outcome = _run(target, run_spec, pinned, image, rec, env, secrets, opts, result, push, before_switch)
    return _finish(store, engine, spec, repo, image, rec, opts, serving, result, outcome)


def _run(target, run_spec, pinned: str, image: str, rec: _Record, env: dict, secrets: dict, opts: DeployOptions,
         result: DeployResult, push: _Push | None, before_switch):
    """The target's rollout; with a push beside it, wait for the push whatever the outcome."""
    if push is None:
        try:
            outcome = target.rollout(
                run_spec, pinned, rec.revision, env, secrets, opts.timeout_s, before_switch=before_switch
            )
        finally:
            target.set_progress(None)
    else:
        interrupted = False
        try:
            outcome = target.rollout(
                run_spec, image, rec.revision, env, secrets, opts.timeout_s, before_switch=before_switch
            )
        except KeyboardInterrupt:
            interrupted = True  # leave at once: the push thread ends with the process
            raise
        finally:
            target.set_progress(None)
            if not interrupted:
                push.thread.join()  # a refused version still waits for its push: no half upload left
            done = not push.thread.is_alive()
            rec.details["timings"]["push"] = push.seconds
            rec.details["pushed"] = result.pushed = done and push.error is None
    return outcome


def _finish(store, engine, spec, repo: str, image: str, rec: _Record, opts: DeployOptions, serving: str | None,
            result: DeployResult, outcome) -> DeployResult:
    """Record what the rollout did; after a switch, prune the images no kept revision uses."""
    result.warnings = list(outcome.warnings)
    result.reason = outcome.reason
    rec.details["warnings"] = result.warnings
    if outcome.retired:  # what happened to the old replicas (where the target retires them itself)
        rec.details["retired"] = list(outcome.retired)
    if outcome.leftovers:
        rec.details["leftovers"] = list(outcome.leftovers)
    if outcome.ok:
        unrecorded = _record_switch(rec)
        rec.state = result.state = "switched"  # what serves, written or not: never marked failed below
        if unrecorded:
            result.warnings.append(
                f"revision {rec.revision} serves, but its record could not be written ({unrecorded}); the next "
                f"`elfctl deployments`, `deploy` or `infra up` records it switched"
            )
            result.timings = rec.details.get("timings", {})
            return result  # no pruning: which images to keep is read from that record
        keep = {
            r["image"]
            for r in store.query(
                "SELECT image FROM deployments WHERE team = ? AND state IN ('switched', 'superseded') "
                "ORDER BY revision DESC LIMIT ?",
                (spec.name, max(1, opts.keep_images)),
            )
        }
        result.pruned = images.prune(engine, repo, keep | {image})
    else:
        result.logs = outcome.logs
        rec.details["logs"] = outcome.logs[-4000:]
        result.state = "rolled_back" if serving else "failed"
        rec.move(result.state, error=outcome.reason)
    result.timings = rec.details.get("timings", {})
    return result


def deploy(
    store,
    engine,
    registry,
    target,
    spec,
    opts: DeployOptions,
    progress=lambda msg: None,
    env: dict | None = None,
    secrets: dict | None = None,
) -> DeployResult:
    repo = images.repository(registry.address, spec.name)
    tag = _tag(opts.tag or f"c-{images.context_hash(spec)[:16]}")
    image = f"{repo}:{tag}"
    commit = images.git_commit(spec.folder)
    result = DeployResult(spec.name, changed=False, state="planned", image=image, commit=commit)
    key = images.config_key(spec, image, opts.secret_versions, gateway_env.url_for(spec, opts.gateway_url))
    if opts.dry_run:
        result.reason = f"would build {image} (if not in the registry), push, and roll out on {target.name}"
        return result
    with lease(store, spec.name, who(), ttl_s=opts.lock_ttl_s, wait_s=opts.lock_wait_s, progress=progress) as held:
        for line in settle(held, target):
            progress(line)
        serving = target.serving(spec.name)
        current = _current(store, spec.name)
        if serving == image and current and current["details"].get("config_key") == key:
            result.state, result.revision, result.digest = "unchanged", current["revision"], current["digest"]
            result.reason = f"revision {current['revision']} already serves {image}"
            return result
        result.changed = True
        rec = _Record(
            store, spec.name, target.name, image, {"config_key": key, "commit": commit, "tag": tag}, held
        )
        result.revision = rec.revision
        gw = gateway_env.Injected()
        try:
            gw = _mint(store, spec, rec, opts)
            push = _build_and_push(engine, registry, target, spec, repo, tag, opts, rec, result, progress)
            rec.details["built"], rec.details["pushed"] = result.built, result.pushed
            if push is None:
                rec.note(digest=result.digest)
            progress(f"rolling out revision {rec.revision} on {target.name}")
            try:
                _rollout(
                    store, engine, target, spec, repo, tag, rec, opts, serving, result, {**(env or {}), **gw.env},
                    {**(secrets or {}), **gw.secrets}, push,
                )
                result.warnings += gateway_env.settle(store, spec.name, rec.revision, rec.state == "switched", gw)
                return result
            except Exception:
                if push is not None:
                    push.thread.join()  # whatever broke before the rollout began: not mid-upload
                raise
        except BaseException as exc:
            msg = exc.message if isinstance(exc, ElfError) else f"{type(exc).__name__}: {exc}"
            if rec.state not in ("switched", "failed", "rolled_back") and not isinstance(exc, LeaseLost):
                rec.move("failed", error=msg[:2000])
            if rec.state != "switched":
                gateway_env.revoke_quietly(store, gw)
            raise


def _tag(tag: str) -> str:
    if not all(c.isalnum() or c in "._-" for c in tag) or len(tag) > 128 or tag[0] in ".-":
        raise InputError(
            f"--tag {tag!r} is not a valid image tag", hint="use letters, digits, '.', '_' and '-'"
        )
    return tag


def _build_and_push(engine, registry, target, spec, repo: str, tag: str, opts: DeployOptions,
                    rec: _Record, result: DeployResult, progress) -> _Push | None:
    """Build the image unless the registry or this machine has it, then push it unless the registry
    has it. Sets result.built, .pushed and .digest; returns the push still running beside the
    rollout (a target that takes `repo:tag`, not a digest), else None."""
    image = result.image
    rec.move("building")
    digest = registry.digest(repo, tag)
    if digest is None and not engine.image_id(image):
        if opts.no_build:
            raise InputError(
                f"--no-build: {image} is neither in the registry nor on this machine",
                hint="deploy without --no-build, or pass --tag of a pushed image",
            )
        progress(f"building {image}")
        labels = {
            "elfctl.team": spec.name,
            "elfctl.content": tag,
            "org.opencontainers.image.revision": result.commit or "",
        }
        engine.build(str(spec.context_dir), spec.build.dockerfile, image, labels)
        result.built = True
    rec.move("pushing")
    push = None
    if digest is None:
        progress(f"pushing {image}")
        if not target.pins_digest:
            push = _Push(engine, registry, repo, tag)  # beside starting and verifying
        else:
            digest = engine.push(repo, tag) or registry.digest(repo, tag)
            result.pushed = True
    result.digest = digest
    return push


def rollback(
    store,
    engine,
    registry,
    target,
    spec,
    to: int | None,
    opts: DeployOptions,
    progress=lambda msg: None,
    env: dict | None = None,
    secrets: dict | None = None,
) -> DeployResult:
    """Roll the team back to a recorded successful revision (default: the one before the current)."""
    with lease(store, spec.name, who(), ttl_s=opts.lock_ttl_s, wait_s=opts.lock_wait_s, progress=progress) as held:
        for line in settle(held, target):
            progress(line)
        serving = target.serving(spec.name)
        chosen = _rollback_target(store, spec.name, serving, to)
        repo, tag = chosen["image"].rsplit(":", 1)
        result = DeployResult(
            spec.name, changed=True, state="pending", image=chosen["image"], digest=chosen["digest"]
        )
        rec = _Record(
            store,
            spec.name,
            target.name,
            chosen["image"],
            {
                "rollback_of": chosen["revision"],
                "config_key": images.config_key(spec, chosen["image"], opts.secret_versions,
                                                 gateway_env.url_for(spec, opts.gateway_url)),
                "tag": tag,
            },
            held,
        )
        rec.note(digest=chosen["digest"])
        result.revision = rec.revision
        gw = gateway_env.Injected()
        try:
            gw = _mint(store, spec, rec, opts)
            progress(f"rolling back {spec.name} to revision {chosen['revision']} ({chosen['image']})")
            _rollout(
                store, engine, target, spec, repo, tag, rec, opts, serving, result, {**(env or {}), **gw.env},
                {**(secrets or {}), **gw.secrets},
            )
            result.warnings += gateway_env.settle(store, spec.name, rec.revision, rec.state == "switched", gw)
            return result
        except BaseException as exc:
            msg = exc.message if isinstance(exc, ElfError) else f"{type(exc).__name__}: {exc}"
            if rec.state not in ("switched", "failed", "rolled_back") and not isinstance(exc, LeaseLost):
                rec.move("failed", error=msg[:2000])
            if rec.state != "switched":
                gateway_env.revoke_quietly(store, gw)
            raise


def _mint(store, spec, rec: _Record, opts: DeployOptions) -> gateway_env.Injected:
    """The revision's gateway key, once its number is known; its prefix goes into the history
    (with the next state written), never the key."""
    gw = gateway_env.inject(store, spec, rec.revision, opts.gateway_url)
    rec.details.update(gw.record())
    return gw


def _rollback_target(store, team: str, serving: str | None, to: int | None) -> dict:
    """The recorded successful revision to roll back to: `to`, else the newest not serving now."""
    ok_rows = store.query(
        "SELECT revision, image, digest, state FROM deployments WHERE team = ? AND state IN "
        "('switched', 'superseded') ORDER BY revision DESC",
        (team,),
    )
    if not ok_rows:
        raise InputError(f"team {team}: no successful deployment recorded", hint="deploy it first")
    if to is None:
        earlier = [r for r in ok_rows if r["image"] != serving]
        if not earlier:
            raise InputError(f"team {team}: no earlier revision to roll back to",
                             hint=f"see `elfctl deployments {team}`")
        return earlier[0]
    match = [r for r in ok_rows if r["revision"] == to]
    if not match:
        known = ", ".join(str(r["revision"]) for r in ok_rows)
        raise InputError(f"--to {to}: team {team} has no successful revision {to}",
                         hint=f"successful revisions: {known}")
    return match[0]
