"""The encrypted-file backend on its own: format, damage, wrong passphrase, newer format, two
writers at once, a writer killed mid-write."""

import json
import random
import signal
import stat
import subprocess
import sys
import time

import pytest

from elfctl.adapters import encrypted_file
from elfctl.adapters.encrypted_file import MAGIC, CorruptFile, EncryptedFile, NewerFormat, WrongPassphrase

CANARY = "canary-file-7f3a9c1e"


def vault(path, pw="correct horse"):
    return EncryptedFile(path, lambda _new: pw)


@pytest.fixture
def cred_file(tmp_path):
    path = tmp_path / ".elf" / "credentials.enc"
    vault(path).update({"_/A@1": CANARY, "_/B@1": "bee-value"})
    return path


def test_roundtrip_mode_and_no_plaintext(cred_file):
    v = vault(cred_file)
    assert v.get_many(["_/A@1", "_/B@1", "_/C@1"]) == {"_/A@1": CANARY, "_/B@1": "bee-value", "_/C@1": None}
    assert stat.S_IMODE(cred_file.stat().st_mode) == 0o600
    raw = cred_file.read_bytes()
    assert raw.startswith(MAGIC) and CANARY.encode() not in raw and b"bee-value" not in raw
    header = json.loads(raw[len(MAGIC) : raw.index(b"\n", len(MAGIC))])
    assert header["format"] == 1 and header["kdf"]["alg"] == "scrypt" and header["kdf"]["n"] >= 2**14
    assert len(v.master_key()) == 32 and v.master_key() == vault(cred_file).master_key()
    v.update({"_/A@1": None})
    assert vault(cred_file).get_many(["_/A@1"]) == {"_/A@1": None}


def test_wrong_passphrase_is_exit_2_and_changes_nothing(cred_file):
    before = cred_file.read_bytes()
    for op in (lambda v: v.get_many(["_/A@1"]), lambda v: v.update({"_/X@1": "x"}), lambda v: v.rekey("new")):
        with pytest.raises(WrongPassphrase) as e:
            op(vault(cred_file, "wrong"))
        assert e.value.exit_code == 2 and "wrong passphrase" in e.value.message
    assert cred_file.read_bytes() == before


@pytest.mark.parametrize("cut", [5, len(MAGIC) + 10, -1, -20])
def test_truncated_file_is_a_clear_error(cred_file, cut):
    data = cred_file.read_bytes()
    cred_file.write_bytes(data[:cut])
    with pytest.raises(CorruptFile) as e:
        vault(cred_file).get_many(["_/A@1"])
    assert e.value.exit_code == 1 and str(cred_file) in e.value.message
    assert CANARY not in e.value.message


def test_flipped_byte_in_body_or_header_is_detected(cred_file):
    data = bytearray(cred_file.read_bytes())
    body = bytearray(data)
    body[-5] ^= 0x01
    cred_file.write_bytes(bytes(body))
    with pytest.raises(CorruptFile):
        vault(cred_file).get_many(["_/A@1"])
    header_end = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC) : header_end])
    header["nonce"] = header["nonce"][:-4] + ("AAAA" if header["nonce"][-4:] != "AAAA" else "BBBB")
    cred_file.write_bytes(MAGIC + json.dumps(header, sort_keys=True).encode() + bytes(data[header_end:]))
    with pytest.raises(CorruptFile):
        vault(cred_file).get_many(["_/A@1"])


def test_newer_format_is_refused(cred_file):
    data = cred_file.read_bytes()
    end = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC) : end])
    header["format"] = 2
    cred_file.write_bytes(MAGIC + json.dumps(header).encode() + data[end:])
    with pytest.raises(NewerFormat) as e:
        vault(cred_file).update({"_/X@1": "x"})
    assert "newer elfctl (format 2" in e.value.message and "upgrade" in e.value.hint


def test_rekey_switches_passphrase_atomically(cred_file):
    v = vault(cred_file)
    master = v.master_key()
    assert v.rekey("brand new pass") == 2
    with pytest.raises(WrongPassphrase):
        vault(cred_file).get_many(["_/A@1"])
    assert vault(cred_file, "brand new pass").get_many(["_/A@1"])["_/A@1"] == CANARY
    assert vault(cred_file, "brand new pass").master_key() == master  # audit key survives a rekey
    assert [p.name for p in cred_file.parent.iterdir() if ".tmp-" in p.name] == []


WRITER = """
import sys
from pathlib import Path
from elfctl.adapters.encrypted_file import EncryptedFile
v = EncryptedFile(Path(sys.argv[1]), lambda _n: "correct horse")
tag, n = sys.argv[2], int(sys.argv[3])
for i in range(n):
    v.update({f"_/{tag}{i}@1": f"value-{tag}-{i}" + "x" * int(sys.argv[4])})
"""


def test_two_processes_writing_at_once_lose_no_update(cred_file):
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(cred_file), tag, "25", "0"]) for tag in ("P", "Q")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    keys = vault(cred_file).keys()
    assert {k for k in keys if k.startswith(("_/P", "_/Q"))} == {
        f"_/{t}{i}@1" for t in "PQ" for i in range(25)
    }


def test_writer_killed_mid_write_leaves_a_readable_file(cred_file):
    rng = random.Random(9)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(cred_file), "K", "100000", "400000"])
        time.sleep(rng.uniform(0.4, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        values = vault(cred_file).get_many(["_/A@1", "_/B@1"])  # decrypts: the old or a new whole file
        assert values == {"_/A@1": CANARY, "_/B@1": "bee-value"}
    vault(cred_file).update({"_/AFTER@1": "after-kill"})  # the next writer removes dead writers' temp files
    assert list(cred_file.parent.glob(".credentials.enc.tmp-*")) == []


def test_early_derivation_is_shared_not_repeated(cred_file, monkeypatch):
    """`creds run` starts deriving the key before the CLI has loaded; the read must wait for that
    derivation, not run a second scrypt beside it."""
    calls = []
    real = encrypted_file.hashlib.scrypt

    def counting(*a, **kw):
        calls.append(1)
        time.sleep(0.2)  # the derivation is still running when the read arrives
        return real(*a, **kw)

    monkeypatch.setattr(encrypted_file.hashlib, "scrypt", counting)
    encrypted_file._KEY_CACHE.clear()
    encrypted_file.start_deriving(cred_file, "correct horse")
    assert vault(cred_file).get_many(["_/A@1"]) == {"_/A@1": CANARY}
    assert len(calls) == 1


def test_early_derivation_leaves_problems_to_the_read(cred_file, tmp_path, capfd):
    cred_file.write_bytes(cred_file.read_bytes()[:20])
    encrypted_file.start_deriving(cred_file, "correct horse")
    encrypted_file.start_deriving(tmp_path / "missing.enc", "correct horse")
    time.sleep(0.3)
    assert capfd.readouterr() == ("", "")
    with pytest.raises(CorruptFile):
        vault(cred_file).get_many(["_/A@1"])
