"""`make bench`: run every bench/bench_*.py, print one table, write bench/results/latest.json.

Each module exposes `run(env) -> list[Row]`; `env` holds the services started for the run
(ELFCTL_TEST_PG_DSN ...). `python -m bench startup migrate` runs only those suites.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time

from bench.common import REPO, Row


def main(argv: list[str]) -> int:
    from tests import realservices

    names = argv or sorted(p.stem[len("bench_"):] for p in (REPO / "bench").glob("bench_*.py"))
    env = realservices.up()
    os.environ.update(env)
    rows: list[Row] = []
    failed = []
    try:
        for name in names:
            mod = importlib.import_module(f"bench.bench_{name}")
            print(f"running {name} ...", file=sys.stderr, flush=True)
            try:
                rows.extend(mod.run(env))
            except Exception as exc:  # one broken suite must not hide the others' figures
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
    finally:
        realservices.down()
    _print(rows)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    doc = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.node(),
           "cpus": os.cpu_count(), "rows": [r.to_dict() for r in rows], "failed": failed}
    (out / "latest.json").write_text(json.dumps(doc, indent=2))
    print(f"\nwritten {out / 'latest.json'}")
    for f in failed:
        print(f"suite failed: {f}", file=sys.stderr)
    return 1 if failed else 0


def _fmt(v):
    if v is None:
        return ""
    return f"{v:,.1f}" if abs(v) < 1e6 else f"{v:,.0f}"


def _print(rows: list[Row]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="elfctl benchmarks")
    for col in ("suite", "measure", "value", "unit", "baseline (same run)", "ratio", "target", "ok"):
        table.add_column(col)
    for r in rows:
        ratio = f"{r.ratio:.2f}x" if r.ratio else ""
        base = f"{r.baseline}: {_fmt(r.baseline_value)}" if r.baseline else ""
        ok = "" if r.ok is None else ("yes" if r.ok else "NO")
        table.add_row(r.suite, r.name, _fmt(r.value), r.unit, base, ratio, r.target or "", ok)
    Console(width=160).print(table)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
