"""The store team code's breakers, queue and cache live in, opened once per process.

Found like the CLI finds it (elfctl.toml from the current folder up, ELFCTL_STORE_URL), through an
App built as a CLI run builds it; or set by the program with `use_store(store)`. Each decorator also
takes `store=` for one call site.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.RLock()
_store: Any = None
_config: Any = None
_app: Any = None
generation = 0  # bumped when the store may change (use_store, reset): callers' caches compare it


def app() -> Any:
    """The process's App (quiet; closed at exit): config, store, deploy target, as a CLI run has them."""
    global _app
    with _lock:
        if _app is None:
            import atexit

            from elfctl.app import App
            from elfctl.output import Output

            _app = App(Output(quiet=True))
            atexit.register(_app.close)
        return _app


def config() -> Any:
    with _lock:
        return _config if _config is not None else app().config


def store() -> Any:
    with _lock:
        return _store if _store is not None else app().store


def use_store(store: Any, cfg: Any = None) -> None:
    """Make `store` (and `cfg`, an elfctl Config) the process's resilience store."""
    global _store, _config, generation
    with _lock:
        _store, _config = store, cfg if cfg is not None else _config
        generation += 1


def reset() -> None:
    """Forget the store, the configuration and the App (tests, or after changing folders)."""
    global _store, _config, _app, generation
    with _lock:
        if _app is not None:
            _app.close()
        _store, _config, _app = None, None, None
        generation += 1
