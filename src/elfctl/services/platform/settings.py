"""`elfctl config show`: the effective configuration, each value with its source, secrets masked."""

from __future__ import annotations

from elfctl.config import SCHEMA, Config


def effective(cfg: Config) -> dict:
    return {
        "root": str(cfg.root),
        "file": str(cfg.file) if cfg.file else None,
        "profile": cfg.profile,
        "settings": [
            {"key": key, "value": cfg.shown(key), "source": cfg.source(key), "help": SCHEMA[key].help}
            for key in SCHEMA
        ],
    }
