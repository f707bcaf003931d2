"""The foundation's commands as a user meets them: output, --json, exit codes, clear errors."""

import json
import os

import pytest
from tests.conftest import run_elfctl


def test_init_is_safe_to_run_twice(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = cli("init", "--json")
    assert first.exit_code == 0
    data = json.loads(first.stdout)
    assert "elfctl.toml" in data["created"] and "teams/" in data["created"]
    (tmp_path / "elfctl.toml").write_text((tmp_path / "elfctl.toml").read_text() + "\n# mine\n")
    second = json.loads(cli("init", "--json").stdout)
    assert second["created"] == []
    assert "# mine" in (tmp_path / "elfctl.toml").read_text()
    assert (tmp_path / ".gitignore").read_text().count(".elf/") == 1


def test_config_show_json_has_sources_and_masks(project, cli):
    env = {"ELFCTL_STORE_URL": "postgresql://app:hunter2hunter@db/x", "SUPABASE_KEY": "sb-secret-value"}
    res = cli("config", "show", "--json", env=env)
    assert res.exit_code == 0
    assert "hunter2hunter" not in res.stdout and "sb-secret-value" not in res.stdout
    settings = {s["key"]: s for s in json.loads(res.stdout)["settings"]}
    assert settings["store.url"]["source"] == "env ELFCTL_STORE_URL"
    assert settings["deploy.target"]["source"].endswith("elfctl.toml")


def test_db_migrate_status_verify_new_on_both_stores(store_url, cli, project):
    env = {"ELFCTL_STORE_URL": store_url}
    res = cli("db", "migrate", "--json", env=env)
    assert res.exit_code == 0, res.stderr
    # Every shipped migration, from 0001 on (features add theirs, e.g. 0050).
    from elfctl import config
    from elfctl.bootstrap import migrations_dir

    shipped = sorted({int(p.name[:4]) for p in migrations_dir(config.load(cwd=project)).glob("*.sql")})
    assert [m["version"] for m in json.loads(res.stdout)["applied"]] == shipped and shipped[0] == 1
    status = json.loads(cli("db", "status", "--json", env=env).stdout)
    assert status["current_version"] == shipped[-1] and status["pending"] == 0
    assert cli("db", "verify", env=env).exit_code == 0
    human = cli("db", "migrate", env=env)
    assert f"up to date at version {shipped[-1]}" in human.stdout


def test_edited_applied_migration_fails_verify_with_exit_1(project, cli, tmp_path):
    import shutil

    from elfctl import config
    from elfctl.bootstrap import migrations_dir

    migs = tmp_path / "migs"
    shutil.copytree(migrations_dir(config.load(cwd=project)), migs)
    env = {"ELFCTL_STORE_MIGRATIONS_DIR": str(migs)}
    assert cli("db", "migrate", env=env).exit_code == 0
    target = migs / "0001_core.sqlite.sql"
    target.write_text(target.read_text() + "\n-- edited\n")
    res = cli("db", "verify", "--json", env=env)
    assert res.exit_code == 1
    err = json.loads(res.stdout)["error"]
    assert err["code"] == "checksum_drift" and "0001_core.sqlite.sql" in err["message"]
    assert "db repair --file" in err["hint"]
    assert cli("db", "repair", "--file", "0001_core.sqlite.sql", env=env).exit_code == 0
    assert cli("db", "verify", env=env).exit_code == 0


@pytest.mark.parametrize(
    "setup, args, code, needle",
    [
        ("scheme", ["db", "status"], 2, "unknown store scheme 'mysql'"),
        ("unreachable", ["db", "status"], 3, "unreachable"),
        ("toml", ["db", "status"], 2, "elfctl.toml: not valid TOML"),
        ("unknown_key", ["config", "show"], 2, "did you mean 'store.url'"),
        ("readonly", ["db", "migrate"], 2, "blocked"),
        ("bad_flag", ["db", "migrate", "--to", "x"], 2, ""),
    ],
)
def test_bad_input_is_one_clear_line_and_no_traceback(project, setup, args, code, needle):
    from tests.realservices import free_port

    env = {}
    if setup == "scheme":
        env["ELFCTL_STORE_URL"] = "mysql://root:pw@localhost/db"
    elif setup == "unreachable":
        env["ELFCTL_STORE_URL"] = f"postgresql://app:pgpassword99@127.0.0.1:{free_port()}/db"
    elif setup == "toml":
        (project / "elfctl.toml").write_text("[store\n")
    elif setup == "unknown_key":
        (project / "elfctl.toml").write_text("[store]\nulr = 'x'\n")
    elif setup == "readonly":
        (project / "blocked").write_text("")
        env["ELFCTL_STORE_URL"] = f"sqlite:///{project / 'blocked' / 'elf.db'}"
    before = sorted(p.name for p in project.rglob("*"))
    proc = run_elfctl(*args, cwd=project, env=env)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "pgpassword99" not in proc.stderr + proc.stdout
    if needle:
        assert needle in proc.stderr
        assert proc.stderr.startswith("error: ")
    assert sorted(p.name for p in project.rglob("*")) == before


def test_json_errors_go_to_stdout_with_code(project):
    proc = run_elfctl("--json", "db", "status", cwd=project, env={"ELFCTL_STORE_URL": "mysql://x/y"})
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("args, needle", [
    (["health", "--json", "--bogus"], "No such option: --bogus"),
    (["--json", "deploy"], "Missing argument"),
    (["--json", "--bogus"], "No such option"),
    (["deployments", "--json", "--limit", "many"], "many"),
])
def test_usage_errors_under_json_are_json_too(project, args, needle):
    proc = run_elfctl(*args, cwd=project)
    assert proc.returncode == 2
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "usage" and needle in error["message"] and "--help" in error["hint"]
    plain = run_elfctl(*[a for a in args if a != "--json"], cwd=project)
    assert plain.returncode == 2 and plain.stdout == "" and needle in plain.stderr


def test_infra_up_migrates_then_reports_health_and_is_idempotent(project):
    skipped = run_elfctl("infra", "up", "--skip", "store", "--json", cwd=project)
    assert skipped.returncode == 1, skipped.stderr  # the step was skipped, so the store check fails
    assert [(s["name"], s["outcome"]) for s in json.loads(skipped.stdout)["steps"]] == [("store", "skipped")]
    assert json.loads(skipped.stdout)["health"]["checks"]["store"][0]["status"] == "fail"
    assert json.loads(run_elfctl("db", "status", "--json", cwd=project).stdout)["current_version"] == 0
    first = run_elfctl("infra", "up", "--json", cwd=project)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["changed"] is True and data["health"]["status"] == "pass"
    proc = run_elfctl("infra", "up", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    second = json.loads(proc.stdout)
    assert second["changed"] is False
    assert {s["outcome"] for s in second["steps"]} <= {"unchanged", "skipped"}
    plan = run_elfctl("infra", "up", "--dry-run", "--only", "store", cwd=project)
    assert plan.returncode == 0 and "planned" in plan.stdout
    bad = run_elfctl("infra", "up", "--only", "stor", cwd=project)
    assert bad.returncode == 2 and "did you mean 'store'" in bad.stderr


def test_health_fails_when_schema_is_behind(project, pg_url):
    proc = run_elfctl("health", "--json", cwd=project, env={"ELFCTL_STORE_URL": pg_url})
    assert proc.returncode == 1
    store = json.loads(proc.stdout)["checks"]["store"][0]
    assert store["status"] == "fail" and "elfctl db migrate" in store["hint"]
    assert run_elfctl("db", "migrate", cwd=project, env={"ELFCTL_STORE_URL": pg_url}).returncode == 0
    ok = run_elfctl("health", "--json", cwd=project, env={"ELFCTL_STORE_URL": pg_url})
    assert ok.returncode == 0 and json.loads(ok.stdout)["status"] == "pass"


def test_profile_flag_selects_profile(project):
    (project / "elfctl.toml").write_text(
        f'[profiles.staging.store]\nurl = "sqlite:///{project}/staging.db"\n')
    proc = run_elfctl("--profile", "staging", "config", "show", "--json", cwd=project)
    settings = {s["key"]: s for s in json.loads(proc.stdout)["settings"]}
    assert settings["store.url"]["value"].endswith("staging.db")
    assert os.path.basename(settings["store.url"]["value"]) == "staging.db"


def test_non_writable_elf_folder_is_a_clear_error(project):
    """A real permission problem: `.elf/` cannot be written. Root ignores permission bits, so as root
    the folder is made immutable (chattr +i) instead of read-only."""
    import subprocess

    elf = project / ".elf"
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(elf)], check=True)
    else:
        elf.chmod(0o555)
    try:
        proc = run_elfctl("db", "migrate", cwd=project)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
        assert f"{elf}: folder is not writable" in proc.stderr and "hint:" in proc.stderr
        assert sorted(p.name for p in elf.iterdir()) == [".gitignore"]
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(elf)], check=True)
        else:
            elf.chmod(0o755)
