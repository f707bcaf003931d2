"""`elfctl config show`: the effective configuration, each value with its source, secrets masked."""

from __future__ import annotations

from elfctl.config import SCHEMA, Config


def store_in_use(cfg: Config) -> dict:
    """Which store elfctl opens, and why: `store.url` where set, else the embedded SQLite file. The
    Supabase REST settings are read by nothing yet: say so rather than let them look in use."""
    from elfctl.redact import redact_url

    url = cfg.store_url
    why = f"store.url from {cfg.source('store.url')}" if cfg.get("store.url") else "default: no store.url is set"
    note = None
    if cfg.get("supabase.url") or cfg.get("supabase.key"):
        note = ("supabase.url/supabase.key are set, but the REST store is not built yet: elfctl uses the store above. "
                "For a Supabase project set store.url (or ELFCTL_STORE_URL) to its Postgres connection string")
    return {"url": redact_url(url), "dialect": "sqlite" if url.startswith("sqlite") else "postgres", "why": why,
            "note": note}


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
