"""team.yaml's `llm.gateway` as `elfctl team validate` checks it: true/false only, and a team on the
gateway may not set OPENAI_API_KEY / OPENAI_BASE_URL itself (deploy sets them; a provider key listed
there would enter the team's containers). Each refusal is one line naming the file, the field and
the fix, exit 2."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_elfctl


@pytest.mark.parametrize("extra, field, fix", [
    ("llm:\n  gateway: \"yes\"\n", "llm.gateway", "gateway: false"),
    ("secrets: [OPENAI_API_KEY]\n", "secrets", "remove OPENAI_API_KEY from secrets, or set `llm: {gateway: false}`"),
    ("env:\n  OPENAI_BASE_URL: http://x\n", "env", "remove OPENAI_BASE_URL from env"),
])
def test_validate_refuses_with_file_field_and_fix(project, extra, field, fix):
    (project / "teams" / "web").mkdir(parents=True)
    path = project / "teams" / "web" / "team.yaml"
    path.write_text("name: web\n" + extra)
    proc = run_elfctl("team", "validate", "--json", cwd=project)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    err = json.loads(proc.stdout)["error"]
    assert err["message"].startswith(f"{path}: {field}:") and fix in err["message"] + " " + err["hint"]


def test_opted_out_team_may_bring_its_own_key(project):
    (project / "teams" / "web").mkdir(parents=True)
    (project / "teams" / "web" / "team.yaml").write_text(
        "name: web\nsecrets: [OPENAI_API_KEY]\nllm:\n  gateway: false\n")
    proc = run_elfctl("team", "validate", "--json", cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
