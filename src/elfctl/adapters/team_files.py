"""Team files on disk: find, read and parse `teams/<name>/team.yaml` (domain.team validates).

YAML is parsed with limits, so a hostile or broken file is refused in milliseconds: a size cap, and
a cap on the document's size with every alias expanded and on its depth (an alias bomb of a few
hundred bytes otherwise expands to gigabytes when a field is turned into text)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from elfctl.domain.names import check_team_name
from elfctl.domain.team import TeamSpec, parse
from elfctl.errors import InputError

MAX_BYTES = 256 * 1024
MAX_NODES = 10_000  # scalars, lists and mappings, counted with every alias expanded
MAX_DEPTH = 32


def load(path: Path) -> TeamSpec:
    """Read and validate one team.yaml."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})", hint="check the path") from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"{path}: larger than {MAX_BYTES // 1024} KiB", hint="a team.yaml is a few lines; "
                         "keep large data in the team's build context")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(f"{path}: not UTF-8 text (line {line})", hint="save the file as UTF-8") from None
    doc = parse_yaml(text, path)
    if doc is None:
        raise InputError(f"{path}: file is empty", hint="run `elfctl team new NAME` for a template")
    return parse(doc, path, expected_name=path.parent.name)


def parse_yaml(text: str, path: Path) -> Any:
    """YAML text -> Python data, refusing documents too large or deep once aliases are expanded."""
    import yaml

    loader = None
    try:
        _check_depth(yaml, text, path)
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is not None:
            _expanded_size(node, path, 0, {})
        return loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: not valid YAML{where} ({problem})", hint="fix the YAML syntax") from None
    except RecursionError:
        raise _too_big(path) from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_depth(yaml, text: str, path: Path) -> None:
    """Nesting depth from the parser's events (it keeps no Python stack, unlike the composer, whose
    RecursionError on a deeply nested file takes seconds to unwind)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_big(path)
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _too_big(path: Path) -> InputError:
    return InputError(
        f"{path}: the YAML expands to more than {MAX_NODES:,} values or {MAX_DEPTH} levels (aliases counted expanded)",
        hint="write the values out instead of nesting aliases (&name / *name)",
    )


def _expanded_size(node, path: Path, depth: int, seen: dict[int, int]) -> int:
    """Values under `node` with aliases expanded; memoised, so a bomb costs one pass over its nodes."""
    if depth > MAX_DEPTH:  # also ends a recursive alias (&a [*a])
        raise _too_big(path)
    if id(node) in seen:
        return seen[id(node)]
    children = node.value if isinstance(node.value, list) else []
    size = 1
    for child in children:
        for sub in child if isinstance(child, tuple) else (child,):  # mapping items are (key, value)
            size += _expanded_size(sub, path, depth + 1, seen)
    if size > MAX_NODES:
        raise _too_big(path)
    seen[id(node)] = size
    return size


def discover(teams_dir: Path) -> list[Path]:
    """Every teams/<name>/team.yaml, sorted by name."""
    if not teams_dir.is_dir():
        return []
    return sorted(p for p in teams_dir.glob("*/team.yaml"))


def find(teams_dir: Path, name: str) -> TeamSpec:
    path = teams_dir / name / "team.yaml"
    check_team_name(name)
    if not path.is_file():
        known = [p.parent.name for p in discover(teams_dir)]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean '{close[0]}'?" if close else (
            f"teams: {', '.join(known)}" if known else f"create it with `elfctl team new {name}`")
        raise InputError(f"{path}: no such team", hint=hint)
    return load(path)
