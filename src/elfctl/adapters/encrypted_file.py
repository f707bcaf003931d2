"""Credential values in one encrypted file under .elf/ (the backend when no OS keyring is usable).

Layout: MAGIC, one JSON header line, then the AES-256-GCM ciphertext of a JSON payload. The header
(format version, scrypt salt and parameters, nonce, a key check) is the AEAD's associated data, so
editing it breaks decryption too. The key check tells a wrong passphrase (exit 2) from a damaged
file (exit 1) without decrypting anything.

Writes: under an fcntl lock on a sidecar `.lock` file (the data file's inode changes on every
rename), read-modify-write, then temp file (mode 0600) + fsync + rename + fsync of the folder, so a
crash at any point leaves either the old file or the new one, never a mix.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets as pysecrets
import threading
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from elfctl.errors import ElfError, InputError, OperationFailed

MAGIC = b"ELFCTL-CREDENTIALS\n"
FORMAT = 1
# scrypt N=2^15, r=8, p=1: 32 MiB and ~0.1-0.2 s per derivation; paid once per process.
KDF_DEFAULT = {"alg": "scrypt", "n": 2**15, "r": 8, "p": 1}
_KEY_CACHE: dict[tuple, bytes] = {}
_KEY_LOCK = threading.Lock()  # one derivation at a time: a reader waits for start_deriving's, not a 2nd

Passphrase = Callable[[bool], str]  # passphrase(new_file) -> the passphrase (confirmed when new)


class WrongPassphrase(InputError):
    code = "wrong_passphrase"


class NewerFormat(InputError):
    code = "newer_format"


class CorruptFile(OperationFailed):
    code = "corrupt_credentials"


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: str) -> bytes:
    return base64.b64decode(s.encode(), validate=True)


def derive_key(passphrase: str, kdf: dict) -> bytes:
    salt = _unb64(kdf["salt"])
    cache_key = (hashlib.sha256(passphrase.encode()).digest(), salt, kdf["n"], kdf["r"], kdf["p"])
    with _KEY_LOCK:
        key = _KEY_CACHE.get(cache_key)
        if key is None:
            key = hashlib.scrypt(
                passphrase.encode(),
                salt=salt,
                n=kdf["n"],
                r=kdf["r"],
                p=kdf["p"],
                maxmem=256 * 1024 * 1024,
                dklen=32,
            )
            _KEY_CACHE[cache_key] = key
    return key


def start_deriving(path: Path, passphrase: str) -> None:
    """Derive the key of the file at `path` on a daemon thread, so a command that will read it
    overlaps the deliberate scrypt cost with its own start-up: scrypt releases the GIL, and
    derive_key's lock makes the command wait for this derivation instead of running a second one.
    Any problem (no file, damaged header) is left to the real read, which reports it."""

    def derive() -> None:
        try:
            header, _aad, _body = EncryptedFile(path, lambda _new: passphrase)._parse(path.read_bytes())
            derive_key(passphrase, _kdf_params(header))
        except (ElfError, OSError, KeyError, ValueError, TypeError):
            pass

    threading.Thread(target=derive, name="elfctl-kdf", daemon=True).start()


def _kdf_params(header: dict) -> dict:
    return {k: header["kdf"][k] for k in ("alg", "n", "r", "p", "salt")}


def _check_value(key: bytes) -> str:
    return _b64(hmac.new(key, b"elfctl key check", hashlib.sha256).digest()[:16])


class EncryptedFile:
    name = "file"

    def __init__(self, path: Path, passphrase: Passphrase, kdf: dict | None = None):
        self.path = Path(path)
        self._passphrase = passphrase
        self._kdf = dict(kdf or KDF_DEFAULT)
        self._key: bytes | None = None
        self._header: dict | None = None

    @property
    def where(self) -> str:
        return str(self.path)

    # --- the Secrets port ---------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.exists()

    def get_many(self, keys: list[str]) -> dict[str, str | None]:
        payload = self._read()
        values = payload["values"] if payload else {}
        return {k: values.get(k) for k in keys}

    def update(self, changes: dict[str, str | None]) -> None:
        """Set (str) or delete (None) several entries in one atomic write."""
        with self._locked():
            payload = self._read() or self._new_payload()
            for k, v in changes.items():
                if v is None:
                    payload["values"].pop(k, None)
                else:
                    payload["values"][k] = v
            self._write(payload)

    def master_key(self) -> bytes:
        payload = self._read()
        if payload is None:
            with self._locked():
                payload = self._read()
                if payload is None:
                    payload = self._new_payload()
                    self._write(payload)
        return _unb64(payload["master"])

    def keys(self) -> list[str]:
        payload = self._read()
        return sorted(payload["values"]) if payload else []

    def rekey(self, new_passphrase: str) -> int:
        """Re-encrypt everything under a new passphrase (new salt) in one atomic rename."""
        if not new_passphrase:
            raise InputError("the new passphrase is empty", hint="choose a non-empty passphrase")
        with self._locked():
            payload = self._read()
            if payload is None:
                raise InputError(f"{self.path}: no credential file to rekey", hint="set a credential first")
            header = self._fresh_header(new_passphrase)
            self._write(payload, header=header)
        self._passphrase = lambda _new: new_passphrase
        return len(payload["values"])

    def create(self, passphrase: str) -> None:
        """A new, empty file (new master key) under `passphrase`; refused when one exists."""
        if not passphrase:
            raise InputError("the new passphrase is empty", hint="choose a non-empty passphrase")
        with self._locked():
            if self.path.exists():
                raise InputError(f"{self.path}: already exists; a new file is made only where none is",
                                 hint="`elfctl creds rekey` changes its passphrase")
            self._write(self._new_payload(), header=self._fresh_header(passphrase))
        self._passphrase = lambda _new: passphrase

    # --- file format --------------------------------------------------------------------------
    def _new_payload(self) -> dict:
        return {"master": _b64(pysecrets.token_bytes(32)), "values": {}}

    def _fresh_header(self, passphrase: str) -> dict:
        kdf = {**{k: v for k, v in self._kdf.items() if k != "salt"}, "salt": _b64(pysecrets.token_bytes(16))}
        key = derive_key(passphrase, kdf)
        self._key = key
        return {"format": FORMAT, "kdf": kdf, "aead": "AES-256-GCM", "check": _check_value(key)}

    def _read(self) -> dict | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputError(
                f"{self.path}: cannot read ({exc.strerror})", hint="check its permissions"
            ) from None
        header, aad, body = self._parse(data)
        key = self._key_for(header)
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            plain = AESGCM(key).decrypt(_unb64(header["nonce"]), body, aad)
            payload = json.loads(plain)
        except (InvalidTag, ValueError, KeyError):
            raise CorruptFile(
                f"{self.path}: the encrypted content is damaged (truncated or modified)",
                hint="restore the file from a backup; nothing was changed",
            ) from None
        self._header = header
        return payload

    def _parse(self, data: bytes) -> tuple[dict, bytes, bytes]:
        if not data.startswith(MAGIC):
            if MAGIC.startswith(data):
                raise CorruptFile(
                    f"{self.path}: the file is truncated (only {len(data)} bytes)",
                    hint="restore the file from a backup; nothing was changed",
                )
            raise CorruptFile(
                f"{self.path}: not an elfctl credential file", hint="move it away or restore it from a backup"
            )
        end = data.find(b"\n", len(MAGIC))
        if end < 0:
            raise CorruptFile(
                f"{self.path}: the file is truncated inside its header",
                hint="restore the file from a backup; nothing was changed",
            )
        try:
            header = json.loads(data[len(MAGIC) : end])
            fmt = int(header["format"])
        except (ValueError, KeyError, TypeError):
            raise CorruptFile(
                f"{self.path}: the file header is damaged",
                hint="restore the file from a backup; nothing was changed",
            ) from None
        if fmt > FORMAT:
            raise NewerFormat(
                f"{self.path}: written by a newer elfctl (format {fmt}; this elfctl reads format {FORMAT})",
                hint="upgrade elfctl to read this file; nothing was changed",
            )
        if fmt < 1 or header.get("aead") != "AES-256-GCM" or header.get("kdf", {}).get("alg") != "scrypt":
            raise CorruptFile(
                f"{self.path}: unknown cipher or key derivation in the header",
                hint="restore the file from a backup",
            )
        return header, data[: end + 1], data[end + 1 :]

    def _key_for(self, header: dict) -> bytes:
        try:
            key = derive_key(self._passphrase(False), _kdf_params(header))
        except (KeyError, ValueError, TypeError):
            raise CorruptFile(
                f"{self.path}: the key derivation parameters are damaged",
                hint="restore the file from a backup",
            ) from None
        if not hmac.compare_digest(_check_value(key), str(header.get("check", ""))):
            raise WrongPassphrase(
                f"{self.path}: wrong passphrase for the credential file",
                hint="check ELFCTL_MASTER_KEY (or the passphrase typed); nothing was changed",
            )
        self._key = key
        return key

    def _write(self, payload: dict, header: dict | None = None) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if header is None:
            if self._header is None:  # a new file: its passphrase is asked once, with confirmation
                header = self._fresh_header(self._passphrase(True))
            else:
                header = {k: v for k, v in self._header.items() if k != "nonce"}
        nonce = pysecrets.token_bytes(12)
        header = {**header, "nonce": _b64(nonce)}
        head = MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n"
        body = AESGCM(self._key).encrypt(nonce, json.dumps(payload).encode(), head)
        self._atomic_write(head + body)
        self._header = header

    def _atomic_write(self, data: bytes) -> None:
        folder = self.path.parent
        self._remove_orphans()
        tmp = folder / f".{self.path.name}.tmp-{os.getpid()}-{pysecrets.token_hex(4)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise InputError(
                f"{self.path}: cannot write ({exc.strerror})", hint=f"make {folder} writable"
            ) from None

    def _remove_orphans(self) -> None:
        """Temp files of writers killed mid-write (we hold the lock: none is being written now)."""
        for tmp in self.path.parent.glob(f".{self.path.name}.tmp-*"):
            try:
                os.kill(int(tmp.name.split("-")[-2]), 0)
            except (ProcessLookupError, ValueError, IndexError):
                tmp.unlink(missing_ok=True)
            except PermissionError:
                pass

    @contextmanager
    def _locked(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path.parent / (self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InputError(
                f"{self.path}: cannot lock ({exc.strerror})", hint=f"make {self.path.parent} writable"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._header = None  # re-read under the lock: another process may have written
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


__all__ = ["EncryptedFile", "WrongPassphrase", "NewerFormat", "CorruptFile", "ElfError"]
