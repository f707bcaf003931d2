"""The `elfctl` program's entry point. Before it imports the CLI framework (~0.1 s of start-up), it
starts what can run beside that start-up: for a command that reads credential values, deriving the
credential file's key (a deliberate ~0.1 s of scrypt) on the second core."""

from __future__ import annotations

import gc
import sys

from elfctl.cli.args import own_args

READS_VALUES = ("run", "get")


def main() -> None:
    import atexit

    # At exit the interpreter's collections walk every object the command loaded (0.1-0.4 s after a
    # Postgres-backed `elfctl resources` under load) to free memory the OS takes back anyway. Frozen
    # objects are skipped; exit handlers (logging, exporters' flush, closing the store) still run.
    atexit.register(gc.freeze)
    if _reads_credential_values(sys.argv[1:]):
        try:
            from elfctl import bootstrap, config

            bootstrap.start_credential_key(config.load())
        except Exception:  # noqa: BLE001 (only a head start: the command itself reports any problem)
            pass
    # The CLI framework's import leaves ~12,000 tracked objects that live until exit: the collector's
    # passes over them find nothing and cost ~5 ms of every command. Import with it off, then move
    # those objects out of its sight (gc.freeze), and collect as usual from there on.
    gc.disable()
    try:
        from elfctl.cli.main import main as run
    finally:
        gc.freeze()
        gc.enable()
    run()


def _reads_credential_values(args: list[str]) -> bool:
    """`creds run` / `creds get`, root options before them or not (a wrong guess costs only CPU)."""
    words = [a for a in own_args(args) if not a.startswith("-")]
    i = words.index("creds") if "creds" in words else -1
    return 0 <= i < len(words) - 1 and words[i + 1] in READS_VALUES
