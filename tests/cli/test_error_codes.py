"""The set of error codes is closed: ErrorCode lists every code the program can emit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from elfctl.errors import CODES, ElfError, OperationFailed

SRC = Path(__file__).resolve().parents[2] / "src" / "elfctl"


def code_literals() -> list[tuple[str, int, str]]:
    """Every string literal used as an error code in src: `code="x"` arguments, `code = "x"` class
    attributes and `{"code": "x"}` dict entries, as (file, line, code)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        rel = str(path.relative_to(SRC))
        for node in ast.walk(tree):
            pairs = []
            if isinstance(node, ast.keyword) and node.arg == "code":
                pairs.append(node.value)
            elif isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else (
                        stmt.target if isinstance(stmt, ast.AnnAssign) else None)
                    if isinstance(target, ast.Name) and target.id == "code" and stmt.value is not None:
                        pairs.append(stmt.value)
            elif isinstance(node, ast.Dict):
                pairs += [v for k, v in zip(node.keys, node.values, strict=True)
                          if isinstance(k, ast.Constant) and k.value == "code"]
            found += [(rel, v.lineno, v.value) for v in pairs
                      if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return found


def test_every_code_literal_in_src_is_declared():
    literals = code_literals()
    seen = {code for _, _, code in literals}
    # the scan sees the codes spread over the tree, so an empty scan cannot pass as "all declared"
    assert {"internal", "usage", "circuit_open", "not_found", "checksum_drift", "store_damaged"} <= seen
    undeclared = [f"{f}:{line}: {code!r}" for f, line, code in literals if code not in CODES]
    assert not undeclared, "codes missing from elfctl.errors.ErrorCode:\n" + "\n".join(undeclared)


def test_an_undeclared_code_cannot_be_raised():
    with pytest.raises(ValueError, match="'no_such_code' is not declared"):
        ElfError("boom", code="no_such_code")  # type: ignore[arg-type]
    assert ElfError("boom", code="conflict").to_dict()["code"] == "conflict"


def test_an_error_class_with_an_undeclared_code_cannot_be_defined():
    with pytest.raises(ValueError, match="'made_up' is not declared"):
        type("MadeUp", (OperationFailed,), {"code": "made_up"})
