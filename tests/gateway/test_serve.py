"""`elfctl gateway serve` refusing to start: a taken port, an address this machine does not have,
an unmigrated store. One clear line, its exit code, no traceback."""

from __future__ import annotations

import json
import socket

import pytest


def test_a_taken_port_is_exit_1_naming_it(gw_env, elfctl):
    project, _store = gw_env
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = elfctl("gateway", "serve", "--port", str(port), cwd=project, timeout=60)
    assert proc.returncode == 1 and f"port {port} on 127.0.0.1 is already in use" in proc.stderr
    assert "Traceback" not in proc.stderr and "serving" not in proc.stderr


@pytest.mark.parametrize("host", ["999.1.1.1", "10.254.254.254"])
def test_an_address_not_of_this_machine_is_exit_2(gw_env, elfctl, host):
    project, _store = gw_env
    proc = elfctl("--json", "gateway", "serve", "--host", host, "--port", "18999", cwd=project, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert host in json.loads(proc.stdout)["error"]["message"] and "Traceback" not in proc.stderr


def test_an_unmigrated_store_is_refused_before_serving(project, elfctl):
    proc = elfctl("gateway", "serve", "--port", "18998", cwd=project, timeout=60)
    assert proc.returncode == 1 and "elfctl db migrate" in proc.stderr and "serving" not in proc.stderr
