"""The store adapters against real SQLite and a real PostgreSQL server."""

import pytest

from elfctl.errors import InputError, Unreachable


def test_transaction_commits_and_rolls_back(store_url, open_store):
    store = open_store(store_url)
    store.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT)", None)
    with store.transaction() as tx:
        tx.execute("INSERT INTO t VALUES (?, ?)", ("a", 1))
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.execute("INSERT INTO t VALUES (?, ?)", ("b", 2))
            raise RuntimeError("boom")
    assert store.query("SELECT k, v FROM t ORDER BY k") == [{"k": "a", "v": 1}]
    assert "t" in store.tables()


def test_placeholders_leave_quoted_text_and_percent_alone(store_url, open_store):
    store = open_store(store_url)
    rows = store.query("SELECT ? AS a, 'what?' AS b, '100%' AS c", ("x",))
    assert rows == [{"a": "x", "b": "what?", "c": "100%"}]


def test_big_integers_are_exact(store_url, open_store):
    store = open_store(store_url)
    store.execute("CREATE TABLE m (n BIGINT)", None)
    store.executemany("INSERT INTO m VALUES (?)", [(9_007_199_254_740_993,), (1,)])
    assert store.query("SELECT SUM(n) AS s FROM m")[0]["s"] == 9_007_199_254_740_994


def test_sqlite_uses_wal(project, open_store):
    store = open_store(f"sqlite:///{project / '.elf' / 'elf.db'}")
    assert store.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"


def test_unreachable_postgres_is_exit_3_without_password(open_store):
    from tests.realservices import free_port

    with pytest.raises(Unreachable) as err:
        open_store(f"postgresql://app:topsecret@127.0.0.1:{free_port()}/db")
    assert "topsecret" not in err.value.message and "****" in err.value.message
    assert err.value.exit_code == 3


def test_unknown_scheme_is_input_error(open_store):
    with pytest.raises(InputError, match="unknown store scheme 'mysql'") as err:
        open_store("mysql://u:pw@h/db")
    assert "pw" not in err.value.message.replace("postgresql://user:password", "")


def test_non_writable_store_folder(project, open_store):
    import os

    if os.geteuid() == 0:
        # root ignores permission bits: make the folder a file instead, which nobody can write into.
        target = project / "blocked"
        target.write_text("")
        url = f"sqlite:///{target / 'elf.db'}"
    else:
        target = project / "ro"
        target.mkdir()
        target.chmod(0o500)
        url = f"sqlite:///{target / 'elf.db'}"
    with pytest.raises(InputError) as err:
        open_store(url)
    assert str(target) in err.value.message
