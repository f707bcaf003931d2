"""Provider keys from the credential store: an `elfctl.llm.completion` whose OPENAI_API_KEY lives in
the store (encrypted file) beside one whose key is in the environment, same local server, same run.
The store is read once per process, so the steady per-call cost should match; the first call pays
the key derivation and one audited read, reported on its own line."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.bench_llm import MSG, _project
from bench.common import Row


def _median_us(fn, n: int) -> float:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e6)
    return statistics.median(samples)


def run(env) -> list[Row]:
    from tests.llm_server import LLMServer

    from elfctl import bootstrap, config, llm
    from elfctl.adapters import encrypted_file
    from elfctl.domain.secret import Secret
    from elfctl.services.credentials import vault as credentials
    from elfctl.services.llm.app import teams_dir

    cwd, saved = os.getcwd(), {k: os.environ.get(k) for k in ("OPENAI_API_KEY", "ELFCTL_MASTER_KEY",
                                                             "ELFCTL_CREDS_BACKEND")}
    server = LLMServer().start()
    server.answer("*", prompt=10, completion=20)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "wiring"
            store = _project(folder)
            os.chdir(folder)
            os.environ.update({"ELFCTL_MASTER_KEY": "bench passphrase", "ELFCTL_CREDS_BACKEND": "file"})
            cfg = config.load(cwd=folder)
            vault = bootstrap.vault(cfg, store, teams_dir(cfg), "bench")
            credentials.set_value(vault, "OPENAI_API_KEY", Secret("sk-from-the-store"))
            call = lambda: llm.completion(team="bench", model="openai/gpt-4o-mini", messages=MSG,  # noqa: E731
                                          api_base=server.url, max_tokens=20)
            # First call of a runtime (litellm already imported by a warm-up): the store side adds the
            # key derivation (cache cleared) and one audited read.
            os.environ["OPENAI_API_KEY"] = "sk-from-the-env"
            call()
            firsts: dict[str, list[float]] = {"env": [], "store": []}
            for _ in range(3):
                for side in ("env", "store"):
                    if side == "env":
                        os.environ["OPENAI_API_KEY"] = "sk-from-the-env"
                    else:
                        os.environ.pop("OPENAI_API_KEY", None)
                        encrypted_file._KEY_CACHE.clear()
                    llm.reset()
                    t = time.perf_counter()
                    call()
                    firsts[side].append((time.perf_counter() - t) * 1000)
            first_env, first_store = (statistics.median(firsts[k]) for k in ("env", "store"))
            # Steady state, alternating blocks so machine load drifts hit both sides alike.
            env_us, store_us = [], []
            for _ in range(8):
                os.environ["OPENAI_API_KEY"] = "sk-from-the-env"
                env_us.append(_median_us(call, 40))
                os.environ.pop("OPENAI_API_KEY")
                store_us.append(_median_us(call, 40))
            assert server.auth[-1] == "Bearer sk-from-the-store"
            e, s = statistics.median(env_us), statistics.median(store_us)
            store.close()
    finally:
        llm.reset()
        os.chdir(cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.environ.pop("ELFCTL_STORE_URL", None)
        server.stop()
    return [
        Row("wiring", "llm.completion, key from the store (per call, steady)", s, "us",
            "key from the environment", e, "ratio <= 1.1 (read once per process)", s <= e * 1.1),
        Row("wiring", "first call, key from the store (KDF + audited read)", first_store, "ms",
            "first call, key from the environment", first_env),
    ]
