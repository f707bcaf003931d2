"""The price files: litellm's shipped price map (found and read as a file, without importing
litellm, ~40 ms) and the project's overrides (`prices.json` / `prices.yaml`). domain/pricing.py
does the arithmetic on what this reads."""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path

from elfctl.domain import pricing
from elfctl.errors import InputError

MAP_FILE = "model_prices_and_context_window_backup.json"


def litellm_map_path() -> Path:
    """The price map inside the installed litellm package, found without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "litellm is not installed, so there is no price map",
            hint="pip install litellm, or give every model a price in the overrides file",
        )
    return Path(list(spec.submodule_search_locations)[0]) / MAP_FILE


def read_overrides(path: Path) -> tuple[dict, bytes]:
    """The checked overrides of `path` and the file's bytes (which name the price version)."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as exc:
        raise InputError(
            f"{path}: cannot read the price overrides ({exc.strerror})",
            hint="fix llm.prices_file or create the file",
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                         hint="save the file as UTF-8") from None
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(text) or {}
        else:
            doc = json.loads(text or "{}")
    except Exception as exc:  # noqa: BLE001 - YAML and JSON errors alike
        raise InputError(
            f"{path}: not valid {path.suffix[1:].upper()} ({exc})", hint="fix the syntax"
        ) from None
    return pricing.check_overrides(doc, str(path)), raw


@lru_cache(maxsize=8)
def _load(map_path: Path, map_mtime: float, overrides: Path | None, ov_mtime: float) -> pricing.PriceBook:
    ov, ov_raw = read_overrides(overrides) if overrides is not None else (None, b"")
    return pricing.book(map_path.read_bytes(), ov, ov_raw)


def load(overrides: Path | None = None, map_path: Path | None = None) -> pricing.PriceBook:
    """The price book (cached per process until a file changes). A missing overrides file is none."""
    map_path = map_path or litellm_map_path()
    try:
        mtime = map_path.stat().st_mtime
    except OSError:
        raise InputError(
            f"{map_path}: litellm's price map is missing",
            hint="reinstall litellm, or point llm.prices_file at a full price list",
        ) from None
    if overrides is not None and not overrides.exists():
        overrides = None
    return _load(map_path, mtime, overrides, overrides.stat().st_mtime if overrides else 0.0)
