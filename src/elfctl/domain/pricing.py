"""LLM prices: litellm's shipped price map (read as a file by adapters/price_files.py, no `import
litellm`), plus local overrides.

Money is integer nano-dollars. A per-token price is kept as an exact Decimal of nano-dollars (the
map's float printed with repr, so 1.5e-07 USD is exactly 150 nUSD), a row's cost is the exact sum
over its token classes, rounded half-even ONCE to an integer. The price version names the map file's
litellm version and content hash plus the overrides hash, so `cost reprice` knows what changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from elfctl.errors import InputError

NANO = Decimal(1_000_000_000)
TOKEN_CLASSES = ("input", "cached", "cache_write", "output", "reasoning")


def usd_to_nano(usd: Any) -> int:
    """A USD amount (float, str, Decimal) -> integer nano-dollars, half-even."""
    return int((Decimal(str(usd)) * NANO).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def nano_to_usd(nano: int) -> Decimal:
    return Decimal(nano) / NANO


@dataclass(frozen=True)
class Price:
    """Nano-dollars per token for each class. cached/cache_write/reasoning fall back to input/output."""

    model: str
    input: Decimal
    output: Decimal
    cached: Decimal
    cache_write: Decimal
    reasoning: Decimal
    max_output_tokens: int | None = None


@dataclass(frozen=True)
class Tokens:
    """Token counts as providers report them: prompt includes cached and cache-write tokens,
    completion includes reasoning tokens (OpenAI's and litellm's convention)."""

    prompt: int = 0
    completion: int = 0
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0

    def classes(self) -> dict[str, int]:
        cached = min(self.cached, self.prompt)
        write = min(self.cache_write, self.prompt - cached)
        reasoning = min(self.reasoning, self.completion)
        return {
            "input": self.prompt - cached - write,
            "cached": cached,
            "cache_write": write,
            "output": self.completion - reasoning,
            "reasoning": reasoning,
        }


def cost_nano(price: Price, tokens: Tokens) -> int:
    """Exact cost of one usage row in nano-dollars, rounded half-even once."""
    total = sum((getattr(price, cls) * n for cls, n in tokens.classes().items()), Decimal(0))
    return int(total.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _per_token(value: Any) -> Decimal | None:
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    return Decimal(repr(float(value))) * NANO if not isinstance(value, str) else Decimal(value) * NANO


def _price(model: str, entry: dict[str, Any]) -> Price | None:
    inp = _per_token(entry.get("input_cost_per_token"))
    out = _per_token(entry.get("output_cost_per_token"))
    if inp is None or out is None:
        return None
    cached = _per_token(entry.get("cache_read_input_token_cost"))
    write = _per_token(entry.get("cache_creation_input_token_cost"))
    reasoning = _per_token(entry.get("output_cost_per_reasoning_token"))
    mot = entry.get("max_output_tokens")
    return Price(
        model,
        inp,
        out,
        inp if cached is None else cached,
        inp if write is None else write,
        out if reasoning is None else reasoning,
        mot if isinstance(mot, int) else None,
    )


class PriceBook:
    """Model name -> Price, with the version string recorded on every usage row."""

    def __init__(self, entries: dict[str, dict[str, Any]], version: str):
        self._entries = entries
        self.version = version
        self._cache: dict[str, Price | None] = {}

    def lookup(self, model: str) -> Price | None:
        """Exact name, then without the provider prefix (`openai/gpt-4o` -> `gpt-4o`). None: unpriced."""
        if model in self._cache:
            return self._cache[model]
        found = None
        for name in (model, model.split("/", 1)[1] if "/" in model else None):
            if name and name in self._entries:
                found = _price(model, self._entries[name])
                if found:
                    break
        self._cache[model] = found
        return found

    def entries(self) -> dict[str, dict[str, Any]]:
        """The raw map entries by model name (provider, mode, context limits ...), read-only."""
        return self._entries

    def cost(self, model: str, tokens: Tokens) -> int | None:
        price = self.lookup(model)
        return None if price is None else cost_nano(price, tokens)


def check_overrides(doc: Any, where: str) -> dict[str, dict[str, Any]]:
    """The parsed overrides file (`where` names it in errors): {model: {input_cost_per_token,
    output_cost_per_token, ...}} in litellm's own key names (USD per token)."""
    if not isinstance(doc, dict):
        raise InputError(
            f"{where}: must map model names to prices", hint="write `model: {input_cost_per_token: ...}`"
        )
    for model, entry in doc.items():
        if not isinstance(entry, dict):
            raise InputError(f"{where}: {model}: must be a mapping of prices", hint="see litellm's key names")
        for key in ("input_cost_per_token", "output_cost_per_token"):
            value = entry.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise InputError(
                    f"{where}: {model}.{key}: missing or not a number",
                    hint=f"set {model}.{key} to USD per token, e.g. 1.5e-07",
                )
            try:
                if Decimal(str(value)) < 0:
                    raise ValueError
            except Exception:  # noqa: BLE001
                raise InputError(
                    f"{where}: {model}.{key}: {value!r} is not a price",
                    hint="use a non-negative number of USD per token",
                ) from None
    return doc


def book(map_raw: bytes, overrides: dict[str, dict[str, Any]] | None = None,
         overrides_raw: bytes = b"") -> PriceBook:
    """The price book from the map file's bytes and the checked overrides (and their bytes, which
    name the price version)."""
    entries = json.loads(map_raw)
    entries.pop("sample_spec", None)
    ver = f"litellm:{hashlib.sha256(map_raw).hexdigest()[:12]}"
    if overrides is not None:
        entries.update({k: {**entries.get(k, {}), **v} for k, v in overrides.items()})
        ver += f"+local:{hashlib.sha256(overrides_raw).hexdigest()[:8]}"
    return PriceBook(entries, ver)


def map_provider(book: PriceBook, model: str) -> str | None:
    """The price map's `litellm_provider` of a bare model name (`gpt-4o` -> openai), else None."""
    entry = book._entries.get(model)
    return entry.get("litellm_provider") if isinstance(entry, dict) else None
