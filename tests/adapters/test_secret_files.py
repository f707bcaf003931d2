"""Secret files for `secrets_as: files` on Docker: only ever in memory, readable, removed with their
container."""

import re
import shutil
import stat
import uuid
from pathlib import Path

import pytest

from elfctl.adapters.secret_files import SecretFiles, filesystem
from elfctl.errors import InputError


@pytest.fixture
def base():
    path = Path("/dev/shm") / f"elfctl-test-{uuid.uuid4().hex[:8]}"
    files = SecretFiles(path)
    yield files
    shutil.rmtree(path, ignore_errors=True)


def test_files_are_written_in_memory_readable_and_removed(base):
    binds = base.write("elfctl-mkt-r1-0", {"A_KEY": "value-a", "B_KEY": "value-b"}, "/run/secrets")
    assert sorted(binds.values()) == ["/run/secrets/A_KEY", "/run/secrets/B_KEY"]
    for host, inside in binds.items():
        path = Path(host)
        assert filesystem(path) == "tmpfs"
        assert path.read_text() == {"A_KEY": "value-a", "B_KEY": "value-b"}[inside.rsplit("/", 1)[1]]
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert stat.S_IMODE(base.base.stat().st_mode) == 0o700
    assert stat.S_IMODE((base.base / "elfctl-mkt-r1-0").stat().st_mode) == 0o700
    base.write("elfctl-mkt-r2-0", {"A_KEY": "v2"}, "/run/secrets")
    base.write("elfctl-mkt-2-r1-0", {"A_KEY": "another team's"}, "/run/secrets")
    base.sweep(re.compile(r"elfctl-mkt-r\d+-\d+"), live={"elfctl-mkt-r2-0"})
    assert sorted(p.name for p in base.base.iterdir()) == ["elfctl-mkt-2-r1-0", "elfctl-mkt-r2-0"]


def test_a_folder_on_disk_is_refused_with_the_key_and_fix(tmp_path):
    assert filesystem(tmp_path) not in ("tmpfs", "ramfs"), "this test needs tmp_path on a disk filesystem"
    with pytest.raises(InputError) as err:
        SecretFiles(tmp_path / "secrets").write("c", {"A_KEY": "never-written"}, "/run/secrets")
    assert "deploy.secrets_dir" in err.value.message and "not in memory" in err.value.message
    assert "tmpfs" in err.value.hint
    assert not (tmp_path / "secrets" / "c").exists()
