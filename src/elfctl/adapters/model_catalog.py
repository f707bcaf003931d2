"""Model facts for `cost optimize`: provider, per-token prices (nano-USD) and context limits.

Read from the price map that ships inside the litellm package, as a JSON file: `import litellm`
takes seconds, locating its folder does not import it.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from elfctl.errors import ConfigError

PRICE_FILE = "model_prices_and_context_window_backup.json"
NANO = Decimal(10) ** 9


@dataclass(frozen=True)
class ModelFacts:
    model: str
    provider: str
    input_nano: Decimal  # per prompt token
    output_nano: Decimal  # per completion token
    cached_nano: Decimal  # per cached prompt token
    max_input_tokens: int | None
    max_output_tokens: int | None

    def cost(self, prompt: int, completion: int, cached: int = 0) -> int:
        """Nano-USD for these token counts, rounded half-even once."""
        exact = (
            (prompt - cached) * self.input_nano + cached * self.cached_nano + completion * self.output_nano
        )
        return int(exact.quantize(Decimal(1)))


def price_file() -> Path:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the litellm package is not installed, so model prices are unknown", hint="pip install litellm"
        )
    return Path(list(spec.submodule_search_locations)[0]) / PRICE_FILE


@lru_cache(maxsize=4)
def load(path: str | None = None) -> dict[str, ModelFacts]:
    file = Path(path) if path else price_file()
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{file}: cannot read the model price map ({exc})", hint="reinstall litellm, or check the file"
        ) from None
    out = {}
    for name, e in raw.items():
        if not isinstance(e, dict) or e.get("mode") != "chat" or "input_cost_per_token" not in e:
            continue

        def price(key, default=None, e=e):
            value = e.get(key, default)
            return Decimal(str(value)) * NANO if value is not None else None

        inp, outp = price("input_cost_per_token"), price("output_cost_per_token", 0)
        cached = price("cache_read_input_token_cost") or inp
        out[name] = ModelFacts(
            name,
            str(e.get("litellm_provider", "")),
            inp,
            outp,
            cached,
            _int(e.get("max_input_tokens")),
            _int(e.get("max_output_tokens")),
        )
    return out


def _int(v) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None
