"""`elfctl health` with every component up, beside `elfctl --help` in the same run."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from bench.common import PY, Row, time_command


def run(env) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([PY, "-m", "elfctl", "init"], cwd=tmp, check=True, capture_output=True)
        subprocess.run([PY, "-m", "elfctl", "db", "migrate"], cwd=tmp, check=True, capture_output=True)
        helptime = time_command([PY, "-m", "elfctl", "--help"], repeat=7, cwd=Path(tmp))
        health = time_command([PY, "-m", "elfctl", "health", "--json"], repeat=7, cwd=Path(tmp), check=False)
    return [Row("health", "elfctl health (all local)", health, "ms", "elfctl --help", helptime,
                "<1000 ms", ok=health < 1000)]
