"""Model facts for `cost optimize`: provider, per-token prices and context limits of chat models.

A view over `domain.pricing`'s price book (litellm's map read as a file, plus local overrides), so
the ledger and the recommendations price every token the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from elfctl.adapters import price_files
from elfctl.domain import pricing


@dataclass(frozen=True)
class ModelFacts:
    model: str
    provider: str
    price: pricing.Price
    max_input_tokens: int | None
    max_output_tokens: int | None

    @property
    def input_nano(self) -> Decimal:  # per prompt token
        return self.price.input

    @property
    def output_nano(self) -> Decimal:  # per completion token
        return self.price.output

    def cost(self, prompt: int, completion: int, cached: int = 0) -> int:
        """Nano-USD for these token counts, rounded half-even once (the ledger's own arithmetic)."""
        return pricing.cost_nano(self.price, pricing.Tokens(prompt=prompt, completion=completion, cached=cached))


@lru_cache(maxsize=4)
def load(path: str | None = None, overrides: str | None = None) -> dict[str, ModelFacts]:
    book = price_files.load(overrides=Path(overrides) if overrides else None, map_path=Path(path) if path else None)
    out = {}
    for name, entry in book.entries().items():
        if not isinstance(entry, dict) or entry.get("mode") != "chat":
            continue
        price = book.lookup(name)
        if price is None:
            continue
        out[name] = ModelFacts(name, str(entry.get("litellm_provider", "")), price,
                               _int(entry.get("max_input_tokens")), _int(entry.get("max_output_tokens")))
    return out


def _int(v) -> int | None:
    try:
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None
