"""`elfctl config show`: the effective configuration, each value with its source, secrets masked."""

from __future__ import annotations

from elfctl.config import SCHEMA, Config


def store_in_use(cfg: Config) -> dict:
    """Which store elfctl opens, and why (Config.store_choice: store.url, else a Supabase project's
    database connection, else its REST API, else the embedded SQLite file)."""
    from elfctl.redact import redact_url

    choice = cfg.store_choice()
    url = choice.url if choice.kind != "rest" else choice.url.rstrip("/")
    return {"url": redact_url(url), "dialect": choice.kind, "why": choice.why, "note": choice.note}


def effective(cfg: Config) -> dict:
    return {
        "root": str(cfg.root),
        "file": str(cfg.file) if cfg.file else None,
        "profile": cfg.profile,
        "store": store_in_use(cfg),
        "settings": [
            {"key": key, "value": cfg.shown(key), "source": cfg.source(key), "help": SCHEMA[key].help}
            for key in SCHEMA
        ],
    }
