"""The gateway image's wheelhouse: elfctl and every dependency it needs as wheels, built on this machine
with pip, at the versions installed here, so the image build fetches nothing. Dependency wheels are
kept in a cache between builds (they are immutable by name and version); elfctl's own is built fresh."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from elfctl.errors import OperationFailed, Unreachable


def norm(name: str) -> str:
    """A distribution name as wheel file names and pins compare it (PEP 503, underscores)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def declared_requirements(root: Path | None) -> list[str]:
    """elfctl's own requirements: pyproject.toml's in a checkout (the installed metadata of an
    editable install is as old as its last `pip install -e`), else the installed distribution's."""
    from importlib import metadata

    if root is not None:
        import tomllib

        return list(tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"])
    return [r for r in metadata.requires("elfctl") or [] if "extra ==" not in r]


def installed_closure(requirements: list[str]) -> tuple[dict[str, str], list[str]]:
    """({normalised name: version} of what `requirements` need as installed here, markers and
    extras evaluated for this interpreter; the requirements not installed here). The image gets
    the versions the host runs; pip resolves the rest."""
    from importlib import metadata

    from packaging.requirements import Requirement

    pins: dict[str, str] = {}
    absent: list[str] = []
    todo = [(Requirement(r), True) for r in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        req, top = todo.pop()
        key = (norm(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            if top:
                absent.append(str(req))
            continue
        pins[norm(req.name)] = dist.version
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker and not any(sub.marker.evaluate({"extra": e}) for e in (req.extras or {""})):
                continue
            todo.append((sub, False))
    return pins, sorted(absent)


def elfctl_source() -> tuple[Path | None, str]:
    """(the source checkout holding pyproject.toml, or None for an installed wheel; a digest of
    elfctl's code and declared dependencies). In a checkout every source change counts, so the
    gateway always runs the code this CLI runs."""
    import hashlib
    from importlib import metadata

    import elfctl

    pkg = Path(elfctl.__file__).resolve().parent
    root = pkg.parents[1]
    h = hashlib.sha256()
    if not (root / "pyproject.toml").is_file():
        dist = metadata.distribution("elfctl")
        h.update(f"elfctl {dist.version}\n{dist.read_text('RECORD') or ''}".encode())
        return None, h.hexdigest()
    files = [root / "pyproject.toml"]
    for folder in (pkg, root / "migrations"):
        files += sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in files:
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return root, h.hexdigest()


def build(root: Path | None, pins: dict[str, str], absent: list[str], cache: Path, into: Path) -> list[str]:
    """Wheels of elfctl and every pinned dependency, in `into` (hard links into `cache`, which
    keeps dependency wheels between builds). pip runs here, on the host: the build fetches nothing."""
    import os
    import sys
    from importlib import metadata

    cache.mkdir(parents=True, exist_ok=True)
    fresh = into / "elfctl-wheel"
    fresh.mkdir()
    pip_version = metadata.version("pip")
    have = {_wheel_key(p.name) for p in cache.glob("*.whl")}
    wanted = {(k, _version(v)) for k, v in pins.items()} | {("pip", _version(pip_version))}
    missing = sorted(f"{k}=={v}" for k, v in wanted if (k, v) not in have)
    base = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps"]
    if missing:
        _pip(base + ["--find-links", str(cache), "--wheel-dir", str(cache), *missing])
    _pip(base + ["--wheel-dir", str(fresh), str(root) if root else f"elfctl=={metadata.version('elfctl')}"])
    if absent:  # not installed here: pip resolves them and what they need, beside the pins
        _pip([a for a in base if a != "--no-deps"] + ["--find-links", str(cache), "--wheel-dir", str(fresh),
                                                       *absent, *(f"{k}=={v}" for k, v in pins.items())])
    names = []
    for p in cache.glob("*.whl"):
        if _wheel_key(p.name) in wanted:
            _link(p, into / p.name)
            names.append(p.name)
    for p in fresh.glob("*.whl"):
        os.replace(p, into / p.name)
        names.append(p.name)
    fresh.rmdir()
    names = sorted(set(names))
    got = {_wheel_key(n) for n in names}
    lacking = sorted(f"{k}=={v}" for k, v in wanted if (k, v) not in got)
    if lacking:
        raise OperationFailed(f"gateway image: no wheel for {', '.join(lacking[:5])}",
                              hint="pip built none for this platform; check `pip wheel` of it by hand")
    return names


def _wheel_key(filename: str) -> tuple[str, str]:
    name, version = filename.split("-")[:2]
    return norm(name), _version(version)


def _version(v: str) -> str:
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(v))
    except InvalidVersion:
        return v


def _link(src: Path, dst: Path) -> None:
    import os

    try:
        os.link(src, dst)
    except OSError:  # another filesystem
        shutil.copyfile(src, dst)


def _pip(cmd: list[str]) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        raise Unreachable("gateway image: `pip wheel` did not finish in 30 min",
                          hint="check the package index pip uses (pip config list)") from None
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if not ln.startswith("WARNING")]
        raise Unreachable(f"gateway image: `pip wheel` failed (exit {proc.returncode}): "
                          f"{' '.join(lines[-3:])[:400]}",
                          hint="the wheelhouse is built on this machine from the package index pip uses "
                          "(pip config list); nothing is fetched inside the image build")
