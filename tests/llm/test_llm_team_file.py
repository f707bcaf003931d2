"""elfctl.llm.completion(team=...) reads the team's file with the same limits as the CLI."""

from __future__ import annotations

import time

import pytest

from elfctl.errors import InputError
from tests.adapters.test_team_files import bomb


def test_llm_completion_refuses_an_alias_bomb_team_fast(llm_env, llm_server):
    from elfctl import llm

    project, store = llm_env
    path = project / "teams" / "alpha" / "team.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(bomb(name="alpha"))
    t0 = time.monotonic()
    with pytest.raises(InputError) as err:
        llm.completion(team="alpha", messages=[{"role": "user", "content": "hi"}], api_base=llm_server.url)
    assert time.monotonic() - t0 < 5 and err.value.message.startswith(f"{path}: the YAML expands")
    assert store.query("SELECT COUNT(*) AS n FROM api_usage")[0]["n"] == 0
