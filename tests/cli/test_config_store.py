"""`config show` says which store elfctl opens and why: store.url, a Supabase project's database
connection (SUPABASE_DB_URL), its REST API (SUPABASE_URL + SUPABASE_KEY), or the embedded SQLite
file; and that is the store the commands then open. Secrets never show."""

import json

import pytest
from tests.conftest import run_elfctl

SECRETS = ("hunter2", "sb-secret-key-1", "dbpass9")


def store_of(project, env: dict) -> dict:
    proc = run_elfctl("config", "show", "--json", cwd=project, env=env)
    assert proc.returncode == 0, proc.stderr
    assert not any(s in proc.stdout + proc.stderr for s in SECRETS)
    return json.loads(proc.stdout)["store"]


def test_default_is_the_embedded_sqlite_file(project):
    store = store_of(project, {})
    assert store["url"].endswith("/.elf/elf.db") and store["dialect"] == "sqlite"
    assert store["why"] == "default: no store.url is set" and store["note"] is None


def test_supabase_url_and_key_select_the_rest_api(project):
    store = store_of(project, {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_KEY": "sb-secret-key-1"})
    assert store == {"url": "https://abc.supabase.co", "dialect": "rest", "note": None,
                     "why": "Supabase REST API: supabase.url from env SUPABASE_URL, supabase.key from env SUPABASE_KEY; "
                            "migrate, deploy and creds need SUPABASE_DB_URL"}


def test_a_supabase_store_url_selects_the_rest_api_too(project):
    store = store_of(project, {"ELFCTL_STORE_URL": "supabase+https://abc.supabase.co",
                               "SUPABASE_KEY": "sb-secret-key-1"})
    assert store["dialect"] == "rest" and store["url"] == "https://abc.supabase.co"
    assert store["why"].startswith("Supabase REST API: store.url from env ELFCTL_STORE_URL")


def test_the_database_connection_wins_over_the_rest_api(project):
    store = store_of(project, {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_KEY": "sb-secret-key-1",
                               "SUPABASE_DB_URL": "postgresql://postgres:dbpass9@db.abc.supabase.co:5432/postgres"})
    assert store["dialect"] == "postgres" and store["url"] == "postgresql://postgres:****@db.abc.supabase.co:5432/postgres"
    assert store["why"].startswith("supabase.db_url from env SUPABASE_DB_URL")


def test_store_url_wins_over_supabase_settings_and_says_so(project):
    proc = run_elfctl("config", "show", cwd=project,
                      env={"ELFCTL_STORE_URL": "postgresql://u:hunter2@db.example:5432/x",
                           "SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_KEY": "sb-secret-key-1"})
    assert proc.returncode == 0
    assert "store in use: postgresql://u:****@db.example:5432/x (store.url from env ELFCTL_STORE_URL)" in proc.stderr
    assert ("warning: supabase.url and supabase.key are set but not used: store.url names the store explicitly "
            "and wins") in proc.stderr
    assert not any(s in proc.stdout + proc.stderr for s in SECRETS)


@pytest.mark.parametrize("env, note", [
    ({"SUPABASE_KEY": "sb-secret-key-1"}, "supabase.key is set without supabase.url (SUPABASE_URL): not used"),
    ({"SUPABASE_URL": "https://abc.supabase.co"},
     "supabase.key (SUPABASE_KEY) is not set: the REST API cannot be used without the project's service_role key"),
])
def test_half_a_supabase_configuration_is_named(project, env, note):
    assert store_of(project, env)["note"] == note


def test_a_supabase_key_without_a_url_is_not_read_as_a_store(project):
    proc = run_elfctl("config", "show", cwd=project, env={"SUPABASE_KEY": "sb-secret-key-1"})
    assert "store in use: sqlite:///" in proc.stderr and "sb-secret-key-1" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("env", [
    {},
    {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_KEY": "sb-secret-key-1"},
    {"SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_KEY": "sb-secret-key-1",
     "SUPABASE_DB_URL": "postgresql://postgres:dbpass9@db.abc.supabase.co:5432/postgres"},
    {"ELFCTL_STORE_URL": "supabase+https://abc.supabase.co", "SUPABASE_KEY": "sb-secret-key-1"},
])
def test_store_url_hands_the_same_store_to_a_child_process(project, env):
    """The gateway and `notify send` get cfg.store_url as ELFCTL_STORE_URL: they must open the store
    this process opens (a child given the SQLite default while the parent used Supabase would read and
    write another store without a word)."""
    from elfctl import config

    parent = config.load(cwd=project, environ=env).store_choice()
    url = config.load(cwd=project, environ=env).store_url
    child = config.load(cwd=project, environ={**env, "ELFCTL_STORE_URL": url}).store_choice()
    assert (child.kind, child.url) == (parent.kind, parent.url)
