"""`elfctl mcp check` against the SDK itself, in the same run.

1. One stdio server (tests/mcp/servers.py, written with the SDK): `elfctl mcp check NAME` beside a bare
   script doing only the SDK's connect + initialize + list_tools, each a fresh process, interleaved.
   Goal: <= 1.2x.
2. Ten streamable-HTTP servers (started once, so their start-up is not what is measured) checked by
   one `elfctl mcp check`, beside the slowest of the ten checked alone. Goal: < 2x.
"""

from __future__ import annotations

import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import PY, REPO, Row

SERVERS = REPO / "tests" / "mcp" / "servers.py"
BARE = """
import sys, anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

async def main():
    async with stdio_client(StdioServerParameters(command=sys.argv[1], args=sys.argv[2:])) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            await s.list_tools()

anyio.run(main)
"""


def _run(argv, cwd, env=None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:4]} exited {proc.returncode}: {proc.stderr[-400:]}")
    return (time.perf_counter() - t0) * 1000


def run(env) -> list[Row]:
    import os

    from tests.mcp.conftest import Served

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        full = {**os.environ, "ELFCTL_STORE_URL": f"sqlite:///{project / '.elf' / 'elf.db'}"}
        elf = [PY, "-m", "elfctl"]
        _run([*elf, "init"], project, full)
        _run([*elf, "db", "migrate"], project, full)
        _run([*elf, "mcp", "add", "one", "--command", shlex.join([PY, str(SERVERS), "stdio"])], project, full)
        bare = project / "bare.py"
        bare.write_text(BARE)
        ours, sdk = [], []
        for _ in range(5):  # interleaved: the machine's load hits both alike
            ours.append(_run([*elf, "mcp", "check", "one", "--timeout", "120"], project, full))
            sdk.append(_run([PY, str(bare), PY, str(SERVERS), "stdio"], project, full))
        o, s = statistics.median(ours), statistics.median(sdk)
        rows.append(Row("mcp", "mcp check, one stdio server (process start to verdict)", o, "ms",
                        "SDK bare connect+initialize+list_tools", s, "<=1.2x", ok=o <= 1.2 * s))

        served = [Served("http") for _ in range(10)]
        try:
            for i, srv in enumerate(served):
                _run([*elf, "mcp", "add", f"h{i}", "--url", srv.url], project, full)
            singles = [statistics.median(_run([*elf, "mcp", "check", f"h{i}"], project, full) for _ in range(3))
                       for i in range(10)]
            ten = statistics.median(_run([*elf, "mcp", "check", *[f"h{i}" for i in range(10)]], project, full)
                                    for _ in range(3))
        finally:
            for srv in served:
                srv.proc.kill()
                srv.proc.wait(10)
        rows.append(Row("mcp", "mcp check, ten streamable-HTTP servers at once", ten, "ms",
                        "the slowest one checked alone", max(singles), "<2x", ok=ten < 2 * max(singles)))
    return rows


if __name__ == "__main__":
    for r in run({}):
        print(r)
