"""Migrations against real SQLite and real PostgreSQL."""

import multiprocessing
import shutil

import pytest

from elfctl.bootstrap import migrations_dir as shipped_dir
from elfctl.errors import InputError, MigrationError
from elfctl.services.platform import migrate as svc


@pytest.fixture
def folder(tmp_path, project):
    """A copy of the shipped migrations plus room for test ones."""
    from elfctl import config

    dst = tmp_path / "migs"
    # Only the core migration: these tests exercise the mechanism with their own numbered files,
    # so features adding migrations (0050_...) must not shift their expectations.
    shutil.copytree(shipped_dir(config.load(cwd=project)), dst,
                    ignore=lambda _d, names: [n for n in names if not n.startswith("0001_")])
    return dst


def test_migrate_creates_the_core_tables_and_is_idempotent(store_url, open_store, folder):
    store = open_store(store_url)
    first = svc.migrate(store, folder)
    assert [m.version for m in first.applied] == [1]
    tables = set(store.tables())
    for name in ("api_usage", "daily_cost_summary", "budgets", "spend_counters", "deployments",
                 "deploy_locks", "credentials", "credential_audit", "registry_entries", "breaker_state",
                 "schema_migrations"):
        assert name in tables
    row = store.query("SELECT * FROM schema_migrations")[0]
    assert row["checksum_algo"] == "sha256-lf" and len(row["checksum"]) == 64
    assert row["elfctl_version"] and "@" in row["applied_by"] and row["duration_ms"] >= 0
    again = svc.migrate(store, folder)
    assert again.applied == [] and again.current_version == 1


def test_to_and_dry_run(store_url, open_store, folder):
    (folder / "0002_two.sql").write_text("CREATE TABLE two (x INTEGER);")
    (folder / "0003_three.sql").write_text("CREATE TABLE three (x INTEGER);")
    store = open_store(store_url)
    plan = svc.migrate(store, folder, dry_run=True)
    assert [m.version for m in plan.applied] == [1, 2, 3]
    assert "schema_migrations" not in store.tables()
    svc.migrate(store, folder, to=2)
    assert "two" in store.tables() and "three" not in store.tables()
    st = svc.status(store, folder)
    assert (st.current_version, st.latest_version, st.pending) == (2, 3, 1)
    with pytest.raises(InputError, match="--to 7"):
        svc.migrate(store, folder, to=7)


def test_failed_migration_changes_nothing_and_names_file_and_statement(store_url, open_store, folder):
    store = open_store(store_url)
    svc.migrate(store, folder)
    (folder / "0002_broken.sql").write_text(
        "CREATE TABLE half (x INTEGER);\nINSERT INTO half VALUES (1);\nSELECT * FROM no_such_table;\n")
    with pytest.raises(MigrationError) as err:
        svc.migrate(store, folder)
    assert "0002_broken.sql" in err.value.message and "statement 3 of 3" in err.value.message
    assert "no_such_table" in err.value.message
    assert "half" not in store.tables()
    assert svc.status(store, folder).current_version == 1
    (folder / "0002_broken.sql").write_text("CREATE TABLE half (x INTEGER);\n")
    assert [m.version for m in svc.migrate(store, folder).applied] == [2]


def test_drift_is_detected_and_repaired_for_one_file(store_url, open_store, folder):
    (folder / "0002_two.sql").write_text("CREATE TABLE two (x INTEGER);\n")
    store = open_store(store_url)
    svc.migrate(store, folder)
    (folder / "0002_two.sql").write_text("CREATE TABLE two (x INTEGER);\r\n")  # line endings only
    svc.verify(store, folder)
    (folder / "0002_two.sql").write_text("CREATE TABLE two (x INTEGER, y INTEGER);\n")
    with pytest.raises(MigrationError, match="0002_two.sql: applied migration 2 was edited") as err:
        svc.verify(store, folder)
    assert "db repair --file 0002_two.sql" in err.value.hint
    with pytest.raises(MigrationError):
        svc.migrate(store, folder)
    assert [m.state for m in svc.status(store, folder).migrations] == ["applied", "drifted"]
    result = svc.repair(store, folder, "0002_two.sql")
    assert result.changed
    svc.verify(store, folder)
    assert svc.repair(store, folder, "0002_two.sql").changed is False


def test_new_picks_next_version_and_never_overwrites(folder):
    paths = svc.new(folder, "add_index")
    assert paths[0].name == "0002_add_index.sql"
    pair = svc.new(folder, "per_dialect", dialects=True)
    assert [p.name for p in pair] == ["0003_per_dialect.sqlite.sql", "0003_per_dialect.postgres.sql"]
    with pytest.raises(InputError):
        svc.new(folder, "Bad Name")


def _migrate_in_process(url, folder, root, queue):
    from elfctl import config
    from elfctl.bootstrap import open_store

    store = open_store(config.load(cwd=root), url)
    try:
        result = svc.migrate(store, folder, lock_timeout_s=30)
        queue.put([m.version for m in result.applied])
    except Exception as exc:  # noqa: BLE001
        queue.put(repr(exc))
    finally:
        store.close()


def test_concurrent_migrate_applies_each_migration_once(store_url, folder, project, open_store):
    # Slow migrations widen the race window; both processes start together.
    for v in range(2, 6):
        (folder / f"{v:04d}_m{v}.sql").write_text(
            f"CREATE TABLE m{v} (x INTEGER);\nINSERT INTO m{v} VALUES ({v});\n")
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_migrate_in_process, args=(store_url, folder, project, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = [queue.get(timeout=5) for _ in procs]
    assert all(isinstance(r, list) for r in results), results
    applied = sorted(v for r in results for v in r)
    assert applied == [1, 2, 3, 4, 5]
    store = open_store(store_url)
    assert store.query("SELECT COUNT(*) AS n FROM schema_migrations")[0]["n"] == 5
    for v in range(2, 6):
        assert store.query(f"SELECT COUNT(*) AS n FROM m{v}")[0]["n"] == 1
