"""Credential values in the OS keyring (Secret Service on Linux, Keychain on macOS) via `keyring`.

The only module that imports keyring. One keyring item per credential version, under a service
name unique to the project; keyring errors become ElfError classes here.
"""

from __future__ import annotations

import base64
import secrets as pysecrets

from elfctl.errors import InputError, Unreachable

MASTER = "__master__"  # random 32-byte key for the audit HMAC, created on first use
PASSPHRASE = "__file_passphrase__"  # optional: the encrypted-file passphrase kept in the keyring
# Backends that only pretend to store (fail, null) or store in plain text (keyrings.alt) don't count.
_REJECT = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")


def usable() -> tuple[bool, str]:
    """Is a real OS keyring reachable? (False, why) otherwise. Costs the keyring import (~0.1 s)."""
    try:
        import keyring
        from keyring.backends import chainer

        kr = keyring.get_keyring()
    except Exception as exc:  # noqa: BLE001 (any import/backend failure means "not usable")
        return False, f"keyring unavailable: {type(exc).__name__}"
    backends = kr.backends if isinstance(kr, chainer.ChainerBackend) else [kr]
    good = [b for b in backends if not type(b).__module__.startswith(_REJECT)]
    if not good:
        return False, "no OS keyring backend (no Secret Service on D-Bus, no Keychain)"
    return True, f"{type(good[0]).__module__}.{type(good[0]).__name__}"


class KeyringBackend:
    name = "keyring"

    def __init__(self, service: str):
        import keyring

        self._keyring = keyring
        self.service = service
        self.where = f"OS keyring service {service}"

    def exists(self) -> bool:
        return self._call("read", self._keyring.get_password, MASTER) is not None

    def _call(self, what: str, fn, *args):
        from keyring.errors import KeyringError, KeyringLocked, PasswordDeleteError

        try:
            return fn(self.service, *args)
        except PasswordDeleteError:
            return None
        except KeyringLocked:
            raise Unreachable(
                "the OS keyring is locked",
                hint="unlock it (log in to the desktop session, or `gnome-keyring-daemon --unlock`)",
            ) from None
        except KeyringError as exc:
            raise Unreachable(
                f"the OS keyring failed to {what} ({type(exc).__name__})",
                hint='check that the Secret Service (gnome-keyring) runs, or set creds.backend = "file"',
            ) from None
        except Exception as exc:  # noqa: BLE001 (D-Bus/secretstorage errors surface untyped)
            raise Unreachable(
                f"the OS keyring failed to {what} ({type(exc).__name__})",
                hint="check that the Secret Service (gnome-keyring) runs and is unlocked, "
                'or set creds.backend = "file"',
            ) from None

    def get_many(self, keys: list[str]) -> dict[str, str | None]:
        return {k: self._call("read", self._keyring.get_password, k) for k in keys}

    def update(self, changes: dict[str, str | None]) -> None:
        for k, v in changes.items():
            if v is None:
                self._call("delete", self._keyring.delete_password, k)
            else:
                self._call("store", self._keyring.set_password, k, v)

    def master_key(self) -> bytes:
        raw = self._call("read", self._keyring.get_password, MASTER)
        if raw is None:
            raw = base64.b64encode(pysecrets.token_bytes(32)).decode()
            self._call("store", self._keyring.set_password, MASTER, raw)
        try:
            return base64.b64decode(raw, validate=True)
        except ValueError:
            raise InputError(
                f"OS keyring item {self.service}/{MASTER} is damaged",
                hint="restore it; the audit log cannot be verified without it",
            ) from None

    def file_passphrase(self) -> str | None:
        return self._call("read", self._keyring.get_password, PASSPHRASE)
