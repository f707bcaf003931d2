"""The layer rules of DESIGN.md, read from the source: every import (top level, inside functions,
under TYPE_CHECKING) of every module in src/elfctl, parsed with ast, never imported.

cli -> services -> domain, services -> adapters -> domain; nothing imports cli; adapters import no
service; domain does no I/O and imports nothing below it; no module graph circles, lazy ones
included (a lazy circle still means two modules that cannot be understood apart)."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PKG = SRC / "elfctl"

# Modules domain must not import: I/O and outside systems (their use belongs to adapters/services).
IO_MODULES = ("sqlite3", "subprocess", "socket", "shutil", "tempfile", "urllib.request", "http.client",
              "psycopg", "docker", "kubernetes", "litellm", "supabase", "keyring", "requests", "httpx",
              "mcp", "threading", "multiprocessing", "logging")
# Calls that touch the file system (open(), Path methods); domain takes their results as arguments.
IO_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "iterdir", "glob", "rglob",
            "mkdir", "unlink", "rmdir", "rename", "touch", "stat", "exists", "is_file",
            "is_dir", "listdir", "scandir", "walk", "getenv", "find_spec"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


@cache
def tree(name: str) -> ast.Module:
    path = modules()[name]
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def imported(name: str) -> dict[str, int]:
    """{imported module: first line} for every import statement in `name`, wherever it sits.
    `from a.b import c` is the module a.b.c when that is a module of ours, else a.b."""
    is_pkg = modules()[name].name == "__init__.py"
    out: dict[str, int] = {}
    for node in ast.walk(tree(name)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules() else base for a in node.names]
        for t in targets:
            out.setdefault(t, node.lineno)
    return out


def internal_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name in modules():
        deps = set()
        for target in imported(name):
            while target and target not in modules():  # `import elfctl.x.y` names an attribute path
                target = target.rpartition(".")[0]
            if target and target != name:
                deps.add(target)
        graph[name] = deps
    return graph


def under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def violations(sources: tuple[str, ...], forbidden: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    found = []
    for name in modules():
        if not under(name, *sources) or under(name, *allowed):
            continue
        for target, line in imported(name).items():
            if under(target, *forbidden):
                found.append(f"{modules()[name].relative_to(SRC)}:{line} imports {target}")
    return found


def test_the_parser_sees_lazy_imports():
    """Guard for the rules below: an import inside a function counts."""
    assert "elfctl.bootstrap" in imported("elfctl.app")  # only inside App's properties
    assert any(under(t, "elfctl.cli") for t in imported("elfctl.__main__"))


def test_nothing_imports_the_cli():
    assert violations(("elfctl",), ("elfctl.cli",), allowed=("elfctl.cli", "elfctl.__main__")) == []


def test_adapters_import_no_service_or_wiring():
    assert violations(("elfctl.adapters",),
                      ("elfctl.services", "elfctl.bootstrap", "elfctl.app", "elfctl.cli", "elfctl.llm")) == []


def test_services_do_not_import_the_wiring_or_the_cli():
    """Services receive adapters (or the App as an argument); they never build them (bootstrap is
    the one composition root) and never reach back up."""
    assert violations(("elfctl.services",), ("elfctl.app", "elfctl.bootstrap", "elfctl.cli", "elfctl.llm")) == []


def test_only_the_entry_points_reach_the_composition_root():
    """The App (CLI runs), the library runtime (elfctl.llm) and the entry point's head start."""
    assert violations(("elfctl",), ("elfctl.bootstrap",),
                      allowed=("elfctl.bootstrap", "elfctl.app", "elfctl.llm", "elfctl.cli.entry")) == []


def test_domain_imports_nothing_below_it():
    assert violations(("elfctl.domain",),
                      ("elfctl.adapters", "elfctl.services", "elfctl.bootstrap", "elfctl.app", "elfctl.cli",
                       "elfctl.llm", "elfctl.config", "elfctl.redact", "elfctl.output", *IO_MODULES)) == []


def _io_calls(name: str) -> list[str]:
    found = []
    for node in ast.walk(tree(name)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if called in IO_CALLS:
            found.append(f"{modules()[name].relative_to(SRC)}:{node.lineno} calls {called}()")
    return found


@pytest.mark.parametrize("name", [n for n in sorted(modules()) if under(n, "elfctl.domain")])
def test_domain_does_no_file_io(name):
    assert _io_calls(name) == []


def test_domain_mutates_no_module_state():
    """No `global` statements in domain (process-wide registries live at the edge, e.g. redact)."""
    found = [f"{modules()[n].relative_to(SRC)}:{node.lineno} global {', '.join(node.names)}"
             for n in modules() if under(n, "elfctl.domain")
             for node in ast.walk(tree(n)) if isinstance(node, (ast.Global, ast.Nonlocal))]
    assert found == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_cycle_finder_finds_a_lazy_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    assert cycles(internal_graph()) == []


def test_secret_values_are_built_at_the_edge():
    """`Secret(...)` is pure; `redact.secret(...)` registers the value for scrubbing and builds one.
    Anything else building a Secret would hand out a value the renderers do not know to mask."""
    found = []
    for name in modules():
        if name in ("elfctl.domain.secret", "elfctl.redact"):
            continue
        for node in ast.walk(tree(name)):
            if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
                called = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                if called == "Secret":
                    found.append(f"{modules()[name].relative_to(SRC)}:{node.lineno}")
    assert found == []


def _adapter_classes() -> set[str]:
    """Classes the adapters define, errors and plain records aside: the clients to be wired."""
    found = set()
    for name in modules():
        if not under(name, "elfctl.adapters"):
            continue
        for node in tree(name).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and not any(
                    isinstance(d, (ast.Name, ast.Call)) for d in node.decorator_list):  # not @dataclass
                bases = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]
                if not any(b.endswith(("Error", "Exception", "Unreachable", "Failed")) for b in bases):
                    found.add(node.name)
    return found


def test_adapters_are_built_only_by_the_composition_root():
    classes = _adapter_classes()
    assert {"SqliteStore", "DockerEngine", "KubernetesTarget", "EncryptedFile"} <= classes
    found = []
    for name in modules():
        if name == "elfctl.bootstrap" or under(name, "elfctl.adapters"):
            continue
        for node in ast.walk(tree(name)):
            if isinstance(node, ast.Call):
                called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if called in classes:
                    found.append(f"{modules()[name].relative_to(SRC)}:{node.lineno} builds {called}")
    assert found == []
