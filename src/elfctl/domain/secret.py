"""`Secret`: a credential value that cannot be printed by accident.

Its str/repr/format/JSON forms are the mask; only `.reveal()` returns the value. A plain value
type: the edge builds one with `elfctl.redact.secret(value)`, which also registers the value with
the process's redaction filter, so even a value copied out with `.reveal()` is scrubbed from every
renderer and logger (tests/architecture checks that nothing else builds a Secret).
"""

from __future__ import annotations

MASK = "****"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The value itself: only for handing it to the process or API that needs it."""
        return self._value

    def __setattr__(self, name, value):  # immutable: a Secret is a value
        raise AttributeError("Secret is immutable")

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __format__(self, spec: str) -> str:
        return MASK

    def to_data(self) -> str:
        """What `--json` shows (see output.to_data)."""
        return MASK

    def __eq__(self, other) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # here, not at the top: it loads OpenSSL (~2 ms), and every command imports this module

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self):  # pickling would write the value somewhere unseen
        raise TypeError("Secret values cannot be pickled")

