"""Team files read with limits: hostile YAML is refused fast, naming the file (exit 2)."""

import time

import pytest

from elfctl.adapters.team_files import MAX_BYTES, load
from elfctl.errors import InputError


def bomb(levels: int = 9, name: str = "mkt") -> str:
    """A valid team.yaml but for its description: 9**(levels+1) strings once the aliases expand."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return f"name: {name}\ndescription:\n" + "\n".join("  " + ln for ln in lines) + "\n"


def write(tmp_path, text: str | bytes):
    path = tmp_path / "mkt" / "team.yaml"
    path.parent.mkdir()
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_alias_bomb_is_refused_fast_naming_the_file(tmp_path):
    path = write(tmp_path, bomb())
    t0 = time.monotonic()
    with pytest.raises(InputError) as err:
        load(path)
    assert time.monotonic() - t0 < 1.0
    assert err.value.message.startswith(f"{path}: the YAML expands to more than 10,000 values")
    assert err.value.exit_code == 2 and "alias" in err.value.hint


@pytest.mark.parametrize("text, says", [
    ("name: mkt\ndescription: " + "[" * 5000 + "]" * 5000 + "\n", "expands to more than"),
    ("name: mkt\ndescription: &a [*a]\n", "expands to more than"),
    (b"name: mkt\ndescription: \xff\xfe\n", "not UTF-8 text (line 2)"),
    ("\x1f", "special characters are not allowed"),
    ("name: mkt\ndescription: " + "x" * MAX_BYTES + "\n", "larger than 256 KiB"),
])
def test_hostile_files_are_refused(tmp_path, text, says):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as err:
        load(path)
    assert err.value.message.startswith(f"{path}: ") and says in err.value.message


def test_ordinary_anchors_still_work(tmp_path):
    path = write(tmp_path, "name: mkt\nllm:\n  model: &m gpt-4o\n  fallbacks: [*m]\nenv: {A: 1}\n")
    assert load(path).llm.fallbacks == ("gpt-4o",)
