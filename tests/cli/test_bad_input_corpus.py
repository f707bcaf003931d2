"""The bad-input corpus: bad invocations of every command group (flags, config values, env vars,
files), each run as a user would (`python -m elfctl` in a subprocess). None may print a traceback or
an `internal` error, each exits with the code the README promises (2 for bad usage or input), and
none changes the store. The cases run in parallel threads and need no Docker."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.adapters.test_team_files import bomb
from tests.conftest import run_elfctl


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    code: int = 2
    env: dict = field(default_factory=dict)
    project: str = "ok"  # a folder made by the `projects` fixture
    input: str | None = None
    says: str = ""  # a part of the message (stderr, or the JSON error on stdout)


def c(id: str, *args: str, **kw) -> Case:
    return Case(id, args, **kw)


def cfg(id: str, key: str, value: str, says: str = "", args: tuple[str, ...] = ("config", "show")) -> Case:
    var = "ELFCTL_" + key.replace(".", "_").upper()
    return Case(id, args, env={var: value}, says=says or f"env {var}: '{key}' must be")


GOOD = {"request_id": "r-1", "ts": "2026-03-01T10:00:00Z", "team": "mkt", "requested_model": "m", "model": "m"}

TEAM_FILES = {  # teams/<name>/team.yaml of the "teams" project
    "t-bomb": bomb(name="t-bomb"),
    "t-mem": "name: t-mem\nresources: {memory: 99999999999999999Gi}\n",
    "t-cpu": "name: t-cpu\nresources: {cpu: 99999999999}\n",
    "t-lowmem": "name: t-lowmem\nresources: {memory: 1Ki}\n",
    "t-yaml": "name: t-yaml\nport: [1,\n",
    "t-utf8": b"name: t-utf8\ndescription: \xff\xfe\n",
    "t-deep": "name: t-deep\ndescription: " + "[" * 3000 + "]" * 3000 + "\n",
    "t-loop": "name: t-loop\ndescription: &a [*a]\n",
    "t-big": "name: t-big\ndescription: " + "x" * 300_000 + "\n",
    "t-desc": "name: t-desc\ndescription: [1, 2]\n",
    "t-port": "name: t-port\nport: 70000\n",
    "t-nan": "name: t-nan\nhealth: {timeout_s: .nan}\n",
    "t-ctl": "\x1f",
    "t-name": "name: other\n",
}

CONFIG_FILES = {  # elfctl.toml of a project each
    "cfg-keep": "[deploy]\nkeep_images = -1\n",
    "cfg-nan": "[health]\ntimeout_s = nan\n",
    "cfg-type": '[deploy]\ntimeout_s = "soon"\n',
    "cfg-unknown": "[deploy]\ntimout_s = 5\n",
    "cfg-toml": "[deploy\ntimeout_s = 5\n",
    "cfg-share": "[health]\ndisk_warn_free = 1.5\n",
}

IMPORT_FILES = {  # files in the "ok" project
    "allbad.jsonl": "".join(json.dumps({k: v for k, v in GOOD.items() if k != "model"}) + "\n" for _ in range(3)),
    "empty.jsonl": "",
    "negative.jsonl": json.dumps({**GOOD, "cost_nanousd": -5}) + "\n",
    "team-emoji.jsonl": json.dumps({**GOOD, "team": "téam-😀"}, ensure_ascii=False) + "\n",
    "huge-cost.jsonl": json.dumps({**GOOD, "cost_nanousd": 10**20}) + "\n",
    "bad-ts.jsonl": json.dumps({**GOOD, "ts": "yesterday"}) + "\n",
    "team-dict.jsonl": json.dumps({**GOOD, "team": {"a": 1}}) + "\n",
    "not-json.jsonl": "{{{\n",
    "no-columns.csv": "a,b,c\n1,2,3\n",
    "dotenv-bad.env": "=nokey\n",
    "bad-kubeconfig.yaml": "just a string\n",
}

CASES = [
    # usage
    c("unknown-option", "--bogus"),
    c("unknown-command", "nosuchcommand"),
    c("unknown-command-json", "--json", "nosuchcommand", says='"usage"'),
    c("unknown-subcommand", "cost", "nosuch"),
    c("missing-argument", "deploy"),
    c("profile-missing", "--profile", "nope", "config", "show", says="no [profiles.nope] table"),
    c("profile-env-missing", "config", "show", env={"ELFCTL_PROFILE": "nope"}, says="no [profiles.nope] table"),
    # config values from the environment
    cfg("env-deploy-timeout-negative", "deploy.timeout_s", "-5", "from 0.1 to 86400, got -5"),
    cfg("env-keep-images-negative", "deploy.keep_images", "-1", "from 1 to 1000, got -1"),
    cfg("env-keep-images-fraction", "deploy.keep_images", "2.5"),
    cfg("env-health-timeout-nan", "health.timeout_s", "nan", args=("health",)),
    cfg("env-llm-timeout-inf", "llm.timeout_s", "inf"),
    cfg("env-registry-port-zero", "registry.port", "0"),
    cfg("env-busy-timeout-text", "store.busy_timeout_ms", "soon"),
    cfg("env-autostart-maybe", "docker.autostart", "maybe"),
    cfg("env-poll-zero", "kubernetes.poll_s", "0"),
    cfg("env-retry-tries-zero", "llm.retry_max_tries", "0", args=("cost", "report")),
    cfg("env-lock-ttl-huge", "deploy.lock_ttl_s", "1e12", args=("deployments",)),
    # config values from elfctl.toml
    c("toml-keep-images", "config", "show", project="cfg-keep", says="'deploy.keep_images' must be from 1 to 1000, got -1"),
    c("toml-nan", "health", project="cfg-nan", says="'health.timeout_s' must be a finite number"),
    c("toml-type", "config", "show", project="cfg-type", says="'deploy.timeout_s' must be a finite number"),
    c("toml-unknown-key", "config", "show", project="cfg-unknown", says="did you mean 'deploy.timeout_s'"),
    c("toml-syntax", "config", "show", project="cfg-toml", says="not valid TOML"),
    c("toml-share", "--json", "health", project="cfg-share", says="'health.disk_warn_free' must be from 0 to 1"),
    # numeric flags
    c("check-max-usd-negative", "cost", "check", "--team", "mkt", "--max-usd", "-1", says="'-1' is not an amount in USD"),
    c("check-max-usd-nan", "cost", "check", "--team", "mkt", "--max-usd", "nan"),
    c("check-max-usd-text", "--json", "cost", "check", "--team", "mkt", "--max-usd", "five"),
    c("health-timeout-zero", "health", "--timeout", "0", says="0.0 is not a number from 0.1 to 3,600"),
    c("health-timeout-nan", "health", "--timeout", "nan", says="nan is not a number from 0.1 to 3,600"),
    c("health-timeout-negative", "--json", "health", "--timeout", "-1"),
    c("health-interval-zero", "health", "--watch", "--interval", "0"),
    c("deploy-timeout-negative", "deploy", "mkt", "--timeout", "-1"),
    c("deploy-timeout-nan", "deploy", "mkt", "--timeout", "nan"),
    c("deploy-lock-wait-negative", "deploy", "mkt", "--lock-wait", "-1"),
    c("deploy-tag-bad", "deploy", "mkt", "--tag", "bad tag", says="'bad tag' is not an image tag"),
    c("rollback-to-zero", "rollback", "mkt", "--to", "0"),
    c("rollback-timeout-inf", "rollback", "mkt", "--timeout", "inf"),
    c("deployments-limit-zero", "deployments", "--limit", "0"),
    c("deployments-limit-negative", "--json", "deployments", "-n", "-5"),
    c("logs-tail-negative", "logs", "mkt", "--tail", "-1"),
    c("db-migrate-to-negative", "db", "migrate", "--to", "-1"),
    c("dashboard-days-zero", "cost", "dashboard", "--days", "0"),
    c("dashboard-interval-zero", "cost", "dashboard", "--interval", "0"),
    c("budget-daily-negative", "cost", "budget", "set", "mkt", "--daily", "-1"),
    c("budget-monthly-overflow", "cost", "budget", "set", "mkt", "--monthly", "1e400"),
    c("budget-daily-inf", "cost", "budget", "set", "mkt", "--daily", "inf"),
    c("budget-soft-above-one", "cost", "budget", "set", "mkt", "--daily", "1", "--soft", "2"),
    c("budget-action-unknown", "cost", "budget", "set", "mkt", "--daily", "1", "--action", "explode"),
    c("creds-expires-overflow", "creds", "set", "API_KEY", "--stdin", "--expires", "99999999d", input="v",
      says="'99999999d' is longer than 100 years"),
    c("creds-expires-unit", "creds", "set", "API_KEY", "--stdin", "--expires", "5y", input="v"),
    c("creds-length-zero", "creds", "rotate", "API_KEY", "--generate", "--length", "0"),
    c("k8s-image-bad", "k8s", "render", "mkt", "--image", "bad image ref", says="'bad image ref' is not an image reference"),
    c("k8s-image-upper", "k8s", "render", "mkt", "--image", "Registry/Team:v1"),
    c("k8s-revision-negative", "k8s", "render", "mkt", "--revision", "-3"),
    # names
    c("team-validate-bad-name", "team", "validate", "NOT_A_NAME"),
    c("team-new-bad-name", "team", "new", "Bad_Name", says="DNS-1123"),
    c("deploy-bad-name", "deploy", "Bad_Name"),
    c("logs-bad-name", "logs", "../etc"),
    c("k8s-render-unknown", "k8s", "render", "nosuchteam", says="no such team"),
    c("creds-name-lowercase", "creds", "set", "lower-case", "--stdin", input="v"),
    c("creds-team-bad", "creds", "set", "API_KEY", "--team", "Bad Team", "--stdin", input="v"),
    c("budget-team-bad", "cost", "budget", "set", "Bad Team", "--daily", "1"),
    c("check-team-emoji", "cost", "check", "--team", "téam-😀"),
    c("infra-only-unknown", "infra", "up", "--only", "nosuchstep"),
    # files
    c("import-missing", "cost", "import", "nosuchfile.jsonl", says="no such file"),
    c("import-all-bad", "cost", "import", "allbad.jsonl", says="no row imported, all 3 are bad"),
    c("import-empty", "cost", "import", "empty.jsonl", says="file is empty"),
    c("import-format", "cost", "import", "allbad.jsonl", "--format", "weird"),
    c("import-negative", "--json", "cost", "import", "negative.jsonl", says="cost_nanousd -5 is not in 0.."),
    c("import-team-emoji", "cost", "import", "team-emoji.jsonl", says="is not a team name"),
    c("import-huge-cost", "cost", "import", "huge-cost.jsonl", says="cost_nanousd 100000000000000000000"),
    c("import-bad-ts", "cost", "import", "bad-ts.jsonl", says="ts 'yesterday' is not an ISO-8601 time"),
    c("import-team-dict", "cost", "import", "team-dict.jsonl", says="team must be text, got dict"),
    c("import-not-json", "cost", "import", "not-json.jsonl", says="not valid JSON"),
    c("import-strict-bad", "cost", "import", "negative.jsonl", "--strict", says="nothing was imported"),
    c("import-csv-columns", "cost", "import", "no-columns.csv", "--format", "spendlogs-csv", says="missing column(s)"),
    c("creds-import-missing", "creds", "import", "nosuchfile.env"),
    *(c(f"team-validate-{name}", "team", "validate", name, project="teams", says=f"teams/{name}/team.yaml")
      for name in TEAM_FILES),
    c("team-validate-all", "--json", "team", "validate", project="teams"),
    c("health-alias-bomb", "health", "-c", "llm:config", project="teams", code=1, says="expands to more than"),
    # outside systems and the store, translated at their border (issue 13 section 1)
    c("store-table-dropped", "--json", "cost", "budget", "set", "alpha", "--daily", "1", project="dropped", code=1,
      says="store_not_migrated"),
    c("store-url-bad-option", "db", "status", says="store.url",
      env={"ELFCTL_STORE_URL": "postgresql://u:hunter2pw@127.0.0.1:1/db?sslmode=bogus"}),
    c("store-garbage", "db", "status", project="garbage", code=1, says="damaged"),
    c("store-truncated", "--json", "cost", "report", project="truncated", code=1, says="store_damaged"),
    c("store-unreachable", "--json", "db", "status", code=3, says="unreachable",
      env={"ELFCTL_STORE_URL": "postgresql://postgres@127.0.0.1:1/postgres"}),
    c("docker-host-port", "logs", "mkt", env={"ELFCTL_DOCKER_HOST": "tcp://256.1.1.1:99999"}, says="docker.host"),
    c("kubeconfig-string", "logs", "mkt", "--target", "kubernetes", says="bad-kubeconfig.yaml",
      env={"ELFCTL_KUBERNETES_KUBECONFIG": "bad-kubeconfig.yaml"}),
]


def _env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELFCTL_") or k.startswith("ELFCTL_TEST_")}
    return {**env, "NO_COLOR": "1", "COLUMNS": "200", **extra}


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _store_counts(project: Path) -> dict:
    with sqlite3.connect(project / ".elf" / "elf.db") as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: db.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables}


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpus")
    folders = {}
    for name in ("ok", "teams", "dropped", "garbage", "truncated", *CONFIG_FILES):
        folder = folders[name] = root / name
        folder.mkdir()
        assert run_elfctl("init", cwd=folder, env=_env({})).returncode == 0
    ok = folders["ok"]
    for args in (("db", "migrate"), ("team", "new", "mkt")):
        proc = run_elfctl(*args, cwd=ok, env=_env({}))
        assert proc.returncode == 0, proc.stderr
    for name in ("dropped", "garbage", "truncated"):
        assert run_elfctl("db", "migrate", cwd=folders[name], env=_env({})).returncode == 0
    with sqlite3.connect(folders["dropped"] / ".elf" / "elf.db") as db:
        db.execute("DROP TABLE spend_counters")
    db_file = folders["garbage"] / ".elf" / "elf.db"
    db_file.write_bytes(b"this is not a database" * 500)
    for suffix in ("-wal", "-shm"):
        (db_file.parent / ("elf.db" + suffix)).unlink(missing_ok=True)
    db_file = folders["truncated"] / ".elf" / "elf.db"
    db_file.write_bytes(db_file.read_bytes()[:3000])
    for name, text in IMPORT_FILES.items():
        _write(ok / name, text)
    for name, text in TEAM_FILES.items():
        _write(folders["teams"] / "teams" / name / "team.yaml", text)
    for name, text in CONFIG_FILES.items():
        _write(folders[name] / "elfctl.toml", text)
    return folders


@pytest.fixture(scope="module")
def results(projects) -> dict:
    before = _store_counts(projects["ok"])

    def run(case: Case):
        try:
            return run_elfctl(*case.args, cwd=projects[case.project], env=_env(case.env), input=case.input, timeout=30)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(case.args, -1, "", "(no answer within 30 s)")

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip([k.id for k in CASES], pool.map(run, CASES), strict=True))
    done["_store_before"], done["_store_after"] = before, _store_counts(projects["ok"])
    return done


def test_the_corpus_is_large_and_covers_every_group():
    assert len(CASES) >= 60 and len({k.id for k in CASES}) == len(CASES)
    groups = {next(a for a in k.args if not a.startswith("-")) for k in CASES if any(not a.startswith("-") for a in k.args)}
    assert {"config", "db", "infra", "health", "team", "deploy", "rollback", "deployments", "logs", "cost", "creds",
            "k8s"} <= groups


@pytest.mark.parametrize("case", CASES, ids=[k.id for k in CASES])
def test_bad_input_is_refused_clearly(results, case):
    proc = results[case.id]
    shown = f"exit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stdout + proc.stderr, shown
    assert "internal" not in proc.stdout + proc.stderr, shown
    assert "hunter2pw" not in proc.stdout + proc.stderr, shown  # a store URL's password is never shown
    assert proc.returncode == case.code, shown
    if "--json" in case.args:
        error = json.loads(proc.stdout)["error"]
        assert error["code"] != "internal" and error["message"], shown
    if case.says:
        assert case.says in proc.stdout + proc.stderr, shown
    # One clear line with what is wrong (plus its hint), not a wall of text.
    if "--json" not in case.args and case.code == 2:
        assert proc.stderr.strip() and len(proc.stderr.strip().splitlines()) <= 6, shown


def test_bad_input_changed_nothing(results):
    assert results["_store_after"] == results["_store_before"]
