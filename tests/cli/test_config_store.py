"""`config show` says which store elfctl opens and why, and does not let Supabase's REST settings look
in use while nothing reads them."""

import json

from tests.conftest import run_elfctl


def test_config_show_names_the_store_in_use_and_why(project):
    proc = run_elfctl("config", "show", "--json", cwd=project)
    store = json.loads(proc.stdout)["store"]
    assert store["url"].endswith("/.elf/elf.db") and store["dialect"] == "sqlite"
    assert store["why"] == "default: no store.url is set" and store["note"] is None
    proc = run_elfctl("config", "show", cwd=project,
                      env={"ELFCTL_STORE_URL": "postgresql://u:hunter2@db.example:5432/x",
                           "SUPABASE_URL": "https://abc.supabase.co", "SUPABASE_KEY": "sb-secret-key-1"})
    assert proc.returncode == 0
    assert "store in use: postgresql://u:****@db.example:5432/x (store.url from env ELFCTL_STORE_URL)" in proc.stderr
    assert "the REST store is not built yet" in proc.stderr
    assert "hunter2" not in proc.stdout + proc.stderr and "sb-secret-key-1" not in proc.stdout + proc.stderr
