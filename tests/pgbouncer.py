"""Debian's pgbouncer in transaction mode in front of the test PostgreSQL, as Supabase's pooler on
port 6543: each transaction may run on a different server connection, so session state (session
advisory locks, named prepared statements, SET) does not survive between statements.

`start(upstream_dsn)` writes its ini and userlist into a temporary folder, starts it on a free port
and returns a `Pooler`; `stop()` ends it. The `pgbouncer_url` fixture in tests/supabase/conftest.py
wraps it around a fresh test database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from tests.realservices import free_port

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


@dataclass
class Pooler:
    port: int
    folder: Path
    proc: subprocess.Popen

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: immediate shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.folder, ignore_errors=True)


def start(upstream_dsn: str, pool_size: int = 4) -> Pooler:
    """pgbouncer on 127.0.0.1:<free port>, transaction pooling, every database of the upstream
    server. `pool_size` server connections per database/user: small, so transactions really do
    share and swap server connections."""
    if not Path(BINARY).exists():
        raise RuntimeError("pgbouncer not found (apt-get install pgbouncer)")
    up = conninfo_to_dict(upstream_dsn)
    user = up.get("user", "postgres")
    folder = Path(tempfile.mkdtemp(prefix="elfctl-pgbouncer-"))
    port = free_port()
    (folder / "userlist.txt").write_text(f'"{user}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={up.get('host', '127.0.0.1')} port={up.get('port', '5432')}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'userlist.txt'}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
        "max_client_conn = 200\nserver_reset_query =\n"
        f"logfile = {folder / 'pgbouncer.log'}\npidfile = {folder / 'pgbouncer.pid'}\n"
        "admin_users = " + user + "\n"
    )
    cmd = [BINARY, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        for f in folder.iterdir():
            shutil.chown(f, "postgres", "postgres")
        cmd = [BINARY, "-u", "postgres", str(folder / "pgbouncer.ini")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pooler = Pooler(port, folder, proc)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            log = pooler.log()
            pooler.stop()
            raise RuntimeError(f"pgbouncer exited with {proc.returncode}: {err or log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return pooler
        except OSError:
            time.sleep(0.05)
    pooler.stop()
    raise RuntimeError(f"pgbouncer did not listen on 127.0.0.1:{port} within 15 s")
