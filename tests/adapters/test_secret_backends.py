"""One contract for both credential backends (the Secrets port): the real OS keyring (gnome-keyring's
Secret Service on a private D-Bus) and the encrypted file."""

import subprocess
import sys
import uuid

import pytest

from elfctl.adapters.encrypted_file import EncryptedFile


@pytest.fixture(params=["file", "keyring"])
def backend(request, tmp_path):
    if request.param == "file":
        return EncryptedFile(tmp_path / "credentials.enc", lambda _new: "pass phrase")
    request.getfixturevalue("os_keyring")
    from elfctl.adapters.keyring_backend import KeyringBackend, usable

    ok, why = usable()
    assert ok, why
    return KeyringBackend(f"elfctl-test:{uuid.uuid4().hex}")


def test_set_get_rotate_delete(backend):
    assert backend.get_many(["_/K@1"]) == {"_/K@1": None}
    backend.update({"_/K@1": "first-value", "team/K@1": "team-value"})
    backend.update({"_/K@2": "second-value"})
    assert backend.get_many(["_/K@1", "_/K@2", "team/K@1"]) == {
        "_/K@1": "first-value",
        "_/K@2": "second-value",
        "team/K@1": "team-value",
    }
    backend.update({"_/K@1": None, "_/NEVER@1": None})  # deleting a missing key is not an error
    assert backend.get_many(["_/K@1", "_/K@2"]) == {"_/K@1": None, "_/K@2": "second-value"}


def test_master_key_is_created_once_and_stable(backend):
    key = backend.master_key()
    assert len(key) == 32 and backend.master_key() == key


def test_exists_once_it_holds_its_master_key(backend):
    """What the Vault asks before it lets a backend the store recorded start over (issue 14.12)."""
    assert backend.exists() is False and backend.where
    backend.master_key()
    assert backend.exists() is True


def test_keyring_items_are_visible_to_secret_tool(os_keyring):
    """The values really live in gnome-keyring: libsecret's own CLI finds them."""
    from elfctl.adapters.keyring_backend import KeyringBackend

    service = f"elfctl-test:{uuid.uuid4().hex}"
    KeyringBackend(service).update({"_/SEEN@1": "seen-by-secret-tool"})
    out = subprocess.run(
        ["secret-tool", "lookup", "service", service, "username", "_/SEEN@1"],
        capture_output=True,
        text=True,
        timeout=20,
        env={"DBUS_SESSION_BUS_ADDRESS": os_keyring, "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout == "seen-by-secret-tool"


def test_without_a_session_bus_the_keyring_is_not_usable(tmp_path):
    probe = "from elfctl.adapters.keyring_backend import usable; print(usable())"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/none"},
    )
    assert out.stdout.startswith("(False,"), out.stdout + out.stderr
