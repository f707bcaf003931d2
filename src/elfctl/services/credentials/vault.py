"""Credentials: set, get, list, rotate, remove, check, import, run, audit, rekey, and `resolve`,
the library call other features use to read secrets.

Values live in a Secrets backend (OS keyring or encrypted file), metadata and the audit trail in
the store. Every change and every read happens under one cross-process lock and one transaction,
with its audit entry: versions never collide and the audit chain never forks.
"""

from __future__ import annotations

import datetime as dt
import secrets as pysecrets
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from elfctl.domain import clock
from elfctl.domain import credentials as rules
from elfctl.domain.secret import Secret
from elfctl.errors import InputError, OperationFailed, StoreNotMigrated
from elfctl.ports import Secrets, Store
from elfctl.redact import secret
from elfctl.services.credentials import audit

LOCK = "elfctl-credentials"
COLUMNS = (
    "name, scope, backend, version, created_at, rotated_at, expires_at, last_used_at, previous_valid_until"
)


@dataclass
class CredInfo:
    name: str
    scope: str  # "" = global, else the team
    backend: str
    version: int
    created_at: str
    rotated_at: str | None = None
    expires_at: str | None = None
    last_used_at: str | None = None
    previous_valid_until: str | None = None

    def to_data(self) -> dict:
        d = dict(self.__dict__)
        d["scope"] = self.scope or "global"
        return d


class Vault:
    """What the use cases need, built once per run by `credentials.app.vault_for(app)` (the App's
    `vault`, from bootstrap), or by tests directly."""

    def __init__(
        self,
        store: Store,
        open_backend: Callable[[str], Secrets],
        default_backend: Callable[[], str],
        *,
        grace: dt.timedelta,
        max_age: dt.timedelta | None,
        warn_before: dt.timedelta,
        actor: audit.Actor,
        teams_dir: Path | None = None,
        lock_timeout_s: float = 60.0,
    ):
        self.store = store
        self._open_backend = open_backend
        self._default_backend = default_backend
        self._backends: dict[str, Secrets] = {}
        self._present: set[str] = set()  # backends checked against what the store records
        self.grace, self.max_age, self.warn_before = grace, max_age, warn_before
        self.actor = actor
        self.teams_dir = teams_dir
        self.lock_timeout_s = lock_timeout_s
        self._schema_ok = False

    def backend(self, name: str, *, missing_ok: bool = False) -> Secrets:
        """The backend `name`. One the store records as used (credentials in it, or the audit trail
        keyed by it) must still exist: a new empty one would lose the values silently and make every
        earlier audit entry look edited."""
        if name not in self._backends:
            self._backends[name] = self._open_backend(name)
        backend = self._backends[name]
        if not missing_ok and name not in self._present:
            if not backend.exists():
                used = self._recorded_use(name)
                if used:
                    raise OperationFailed(
                        f"{backend.where}: the {name} credential backend is missing, but the store "
                        f"{self.store.display_url} records {used}",
                        code="credentials_missing",
                        hint="restore it from a backup; or start a new one on purpose with "
                        "`elfctl creds rekey --new` (recorded in the audit trail; its values are lost)",
                    )
            self._present.add(name)
        return backend

    def _recorded_use(self, name: str) -> str:
        """What the store says lives in backend `name` ("" for nothing)."""
        if not self._schema_ok and "credential_audit_head" not in self.store.tables():
            return ""
        rows = self.store.query("SELECT name, scope FROM credentials WHERE backend = ? ORDER BY scope, name", (name,))
        said = []
        if rows:
            names = ", ".join(_where(r["name"], r["scope"]) for r in rows[:3]) + (" ..." if len(rows) > 3 else "")
            said.append(f"{len(rows)} credential(s) in it ({names})")
        h = audit.head(self.store)
        if h and h["key_backend"] == name:
            said.append(f"an audit trail of {h['count']} entries keyed by it")
        return " and ".join(said)

    def default_backend(self) -> str:
        return self._default_backend()

    def require_schema(self) -> None:
        if self._schema_ok:
            return
        if "credential_audit_head" not in self.store.tables():
            raise StoreNotMigrated(
                f"{self.store.display_url}: the store has no credential tables yet",
                hint="run `elfctl db migrate` (or `elfctl infra up`) first",
            )
        self._schema_ok = True

    @contextmanager
    def locked(self):
        """Cross-process lock + write transaction for one operation and its audit entries."""
        self.require_schema()
        with self.store.exclusive(LOCK, self.lock_timeout_s), self.store.transaction() as tx:
            yield tx

    def audit(self, tx, entries: list[dict]) -> None:
        h = audit.head(tx)
        name = h["key_backend"] if h else self.default_backend()
        audit.append(tx, audit.audit_key(self.backend(name).master_key()), name, self.actor, entries)


def _key(scope: str, name: str, version: int) -> str:
    return f"{scope or '_'}/{name}@{version}"


def _row(tx, name: str, scope: str) -> dict | None:
    rows = tx.query(f"SELECT {COLUMNS} FROM credentials WHERE name = ? AND scope = ?", (name, scope))
    return rows[0] if rows else None


def _existing(tx, name: str, scope: str) -> dict:
    row = _row(tx, name, scope)
    if row is None:
        raise _not_found(name, scope)
    return row


def _info(row: dict) -> CredInfo:
    return CredInfo(**{k: row[k] for k in COLUMNS.split(", ")})


def _where(name: str, scope: str) -> str:
    return f"{name} ({'team ' + scope if scope else 'global'})"


def _not_found(name: str, scope: str) -> InputError:
    return InputError(
        f"no credential {_where(name, scope)}",
        code="not_found",
        hint="`elfctl creds list` shows the names; `elfctl creds set NAME` adds one",
    )


# --- set / rotate / rm ----------------------------------------------------------------------------


def set_value(
    vault: Vault,
    name: str,
    value: Secret,
    team: str | None = None,
    expires: str | None = None,
    action: str = "set",
) -> CredInfo:
    """Store a new current version. An existing value becomes the previous version, readable for
    the grace period; anything older is deleted from the backend."""
    rules.check_name(name)
    scope = rules.check_team(team)
    if not isinstance(value, Secret) or not value.reveal():
        raise InputError(f"{name}: the value is empty", hint="give a non-empty value")
    at = clock.now()
    expires_at = rules.iso(at + rules.parse_duration(expires, "--expires")) if expires else None
    with vault.locked() as tx:
        row = _row(tx, name, scope)
        backend = row["backend"] if row else vault.default_backend()
        version = (int(row["version"]) + 1) if row else 1
        changes: dict[str, str | None] = {_key(scope, name, version): value.reveal()}
        if version > 2:
            changes[_key(scope, name, version - 2)] = None
        vault.backend(backend).update(changes)
        if row:
            tx.execute(
                "UPDATE credentials SET version = ?, rotated_at = ?, expires_at = ?, "
                "previous_valid_until = ? WHERE name = ? AND scope = ?",
                (
                    version,
                    rules.iso(at),
                    expires_at if expires else row["expires_at"],
                    rules.iso(at + vault.grace),
                    name,
                    scope,
                ),
            )
        else:
            tx.execute(
                "INSERT INTO credentials (name, scope, backend, version, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, scope, backend, version, rules.iso(at), expires_at),
            )
        vault.audit(tx, [{"action": action, "name": name, "scope": scope, "version": version}])
        return _info(_row(tx, name, scope))


def rotate(
    vault: Vault,
    name: str,
    value: Secret | None = None,
    team: str | None = None,
    generate_length: int | None = None,
    expires: str | None = None,
) -> CredInfo:
    """A new version of an existing credential (given, or generated with `secrets`)."""
    rules.check_name(name)
    scope = rules.check_team(team)
    vault.require_schema()
    _existing(vault.store, name, scope)
    if value is None:
        length = generate_length or 32
        if not 16 <= length <= 512:
            raise InputError(f"--length {length}: out of range", hint="use 16 to 512 characters")
        value = secret(pysecrets.token_urlsafe(length)[:length])
    return set_value(vault, name, value, team=scope, expires=expires, action="rotate")


def remove(vault: Vault, name: str, team: str | None = None) -> CredInfo:
    rules.check_name(name)
    scope = rules.check_team(team)
    with vault.locked() as tx:
        row = _existing(tx, name, scope)
        v = int(row["version"])
        vault.backend(row["backend"]).update({_key(scope, name, i): None for i in (v, v - 1) if i >= 1})
        tx.execute("DELETE FROM credentials WHERE name = ? AND scope = ?", (name, scope))
        vault.audit(tx, [{"action": "delete", "name": name, "scope": scope, "version": v}])
        return _info(row)


# --- read -----------------------------------------------------------------------------------------


def get(vault: Vault, name: str, team: str | None = None, previous: bool = False) -> tuple[CredInfo, Secret]:
    """One value (the current version, or the previous one within its grace period). Audited,
    refused reads too (unknown name, grace period over)."""
    rules.check_name(name)
    scope = rules.check_team(team)
    try:
        return _get(vault, name, scope, previous)
    except (InputError, OperationFailed) as exc:
        if exc.code in ("not_found", "no_previous", "value_missing"):
            _audit_refusal(vault, "read", name, scope, exc.code)
        raise


def _audit_refusal(vault: Vault, action: str, name: str, scope: str, code: str) -> None:
    from elfctl.errors import ElfError

    try:
        with vault.locked() as tx:
            vault.audit(tx, [{"action": action, "name": name, "scope": scope, "result": f"refused: {code}"}])
    except ElfError:
        pass  # the refusal itself is what the user sees; a failing audit must not mask it


def _get(vault: Vault, name: str, scope: str, previous: bool) -> tuple[CredInfo, Secret]:
    with vault.locked() as tx:
        row = _existing(tx, name, scope)
        version = int(row["version"])
        if previous:
            until = rules.parse_iso(row["previous_valid_until"])
            if version < 2 or until is None or until <= clock.now():
                raise InputError(
                    f"{_where(name, scope)}: no previous version within its grace period",
                    hint="the previous version is readable for creds.grace_period after a rotation",
                    code="no_previous",
                )
            version -= 1
        value = vault.backend(row["backend"]).get_many([_key(scope, name, version)])[
            _key(scope, name, version)
        ]
        if value is None:
            raise OperationFailed(
                f"{_where(name, scope)} version {version}: the value is missing from the "
                f"{row['backend']} backend (removed outside elfctl?)",
                hint=f"set it again with `elfctl creds set {name}`",
                code="value_missing",
            )
        tx.execute(
            "UPDATE credentials SET last_used_at = ? WHERE name = ? AND scope = ?",
            (rules.iso(clock.now()), name, scope),
        )
        vault.audit(tx, [{"action": "read", "name": name, "scope": scope, "version": version}])
        return _info(row), secret(value)


def read_many(
    vault: Vault, wanted: list[tuple[str, str]], action: str = "read"
) -> dict[tuple[str, str], Secret]:
    """Values of (name, scope) pairs that exist, one backend round per backend, one audit entry
    each. Missing pairs are simply absent from the result."""
    if not wanted:
        return {}
    with vault.locked() as tx:
        rows = {}
        for name, scope in wanted:
            row = _row(tx, name, scope)
            if row:
                rows[(name, scope)] = row
        out: dict[tuple[str, str], Secret] = {}
        by_backend: dict[str, list[tuple[str, str]]] = {}
        for pair, row in rows.items():
            by_backend.setdefault(row["backend"], []).append(pair)
        for backend, pairs in by_backend.items():
            keys = {p: _key(p[1], p[0], int(rows[p]["version"])) for p in pairs}
            values = vault.backend(backend).get_many(list(keys.values()))
            for p, k in keys.items():
                if values.get(k) is None:
                    raise OperationFailed(
                        f"{_where(*p)}: the value is missing from the {backend} backend",
                        hint=f"set it again with `elfctl creds set {p[0]}`",
                    )
                out[p] = secret(values[k])
        if not out:
            return out  # nothing read: no audit entry, so no backend (passphrase) is needed
        stamp = rules.iso(clock.now())
        for name, scope in out:
            tx.execute(
                "UPDATE credentials SET last_used_at = ? WHERE name = ? AND scope = ?", (stamp, name, scope)
            )
        vault.audit(
            tx,
            [
                {"action": action, "name": n, "scope": s, "version": int(rows[(n, s)]["version"])}
                for n, s in out
            ],
        )
        return out


def resolve(
    vault: Vault, names: list[str], team: str | None = None, *, required: bool = True, action: str = "read"
) -> dict[str, Secret]:
    """{NAME: Secret} for `names`, each looked up in the team's scope first, then globally. With
    required=False missing names are left out (e.g. an LLM key that may come from the environment
    instead); otherwise they are an InputError naming them. Every read is audited; values never
    leave as plain str. (credentials.app.resolve is the same for the run's App.)"""
    for n in names:
        rules.check_name(n)
    scope = rules.check_team(team)
    got = read_many(vault, [(n, scope) for n in names], action=action)
    if scope:  # globals only for names the team lacks: the audit records the value actually used
        got.update(read_many(vault, [(n, "") for n in names if (n, scope) not in got], action=action))
    out: dict[str, Secret] = {}
    for n in names:
        hit = got.get((n, scope)) or got.get((n, ""))
        if hit is not None:
            out[n] = hit
    missing = [n for n in names if n not in out]
    if missing and required:
        raise InputError(
            f"credential(s) not set: {', '.join(missing)}"
            + (f" (team {scope} or global)" if scope else " (global)"),
            code="not_found",
            hint=f"set them with `elfctl creds set {missing[0]}" + (f" --team {scope}`" if scope else "`"),
        )
    return out


def list_(vault: Vault, team: str | None = None) -> list[CredInfo]:
    vault.require_schema()
    sql, params = f"SELECT {COLUMNS} FROM credentials", ()
    if team is not None:
        sql, params = sql + " WHERE scope = ?", (rules.check_team(team),)
    return [_info(r) for r in vault.store.query(sql + " ORDER BY scope, name", params)]


# --- import / rekey -----------------------------------------------------------


@dataclass
class ImportResult:
    file: str
    imported: list[CredInfo]


def import_env(vault: Vault, path: Path, team: str | None = None) -> ImportResult:
    """Every KEY=VALUE of a .env file, validated as a whole before anything is stored."""
    scope = rules.check_team(team)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})",
            hint="give the path of a readable UTF-8 .env file",
        ) from None
    pairs = rules.parse_dotenv(text, path)
    secrets = [(k, secret(v)) for k, v in pairs]  # registered for redaction before anything else
    for k, v in secrets:
        if not v.reveal():
            raise InputError(f"{path}: {k} has an empty value", hint="remove the line or give it a value")
    return ImportResult(str(path), [set_value(vault, k, v, team=scope, action="import") for k, v in secrets])


@dataclass
class RekeyResult:
    file: str
    entries: int


def rekey(vault: Vault, new_passphrase: Secret) -> RekeyResult:
    """Re-encrypt the credential file under a new passphrase, in one atomic rename."""
    with vault.locked() as tx:
        backend = vault.backend("file")
        vault.audit(tx, [{"action": "rekey", "result": "ok"}])  # rolled back if the rekey fails
        count = backend.rekey(new_passphrase.reveal())
        return RekeyResult(backend.where, count)


@dataclass
class NewFileResult:
    file: str
    lost: list[CredInfo]  # metadata of the credentials whose values went with the missing file
    audit_key_changed: bool  # the audit trail was keyed by the lost file: verified from here on


def new_file(vault: Vault, passphrase: Secret) -> NewFileResult:
    """`creds rekey --new`: start a new credential file where the one the store records is missing,
    on purpose. The credentials it held are dropped from the store (their values are gone), and the
    audit trail records it; when the trail was keyed by the lost file, a `new_audit_key` entry marks
    where verification with the new key starts (earlier links are still checked, not their MACs)."""
    with vault.locked() as tx:
        backend = vault.backend("file", missing_ok=True)
        if backend.exists():
            raise InputError(
                f"{backend.where}: the credential file exists; --new only replaces a missing one",
                hint="`elfctl creds rekey` (without --new) changes its passphrase",
            )
        lost = [_info(r) for r in tx.query(f"SELECT {COLUMNS} FROM credentials WHERE backend = 'file' "
                                           "ORDER BY scope, name")]
        tx.execute("DELETE FROM credentials WHERE backend = 'file'")
        h = audit.head(tx)
        key_changed = h is not None and h["key_backend"] == "file"
        backend.create(passphrase.reveal())
        try:
            entries = [{"action": audit.NEW_KEY, "result": f"the audit key was lost with {backend.where}; "
                        "entries before this one can no longer be verified"}] if key_changed else []
            entries.append({"action": "new_file", "result": f"new credential file {backend.where}"})
            entries += [{"action": "delete", "name": c.name, "scope": c.scope, "version": c.version,
                         "result": "lost with the missing file"} for c in lost]
            vault.audit(tx, entries)
        except BaseException:
            Path(backend.where).unlink(missing_ok=True)  # nothing recorded: no new file either
            raise
        return NewFileResult(backend.where, lost, key_changed)
