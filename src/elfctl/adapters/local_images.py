"""Images elfctl builds from this machine's own binaries, because nothing can be pulled:
a busybox base image for teams (and the switch proxy), and a registry image around Debian's
`docker-registry`. Both are `docker import`s of a small rootfs; rebuilt only when missing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from elfctl.errors import InputError

MANAGED = {"elfctl.managed": "true"}

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
"""


def _split(ref: str) -> tuple[str, str]:
    repo, _, tag = ref.rpartition(":")
    if not repo or "/" in tag:
        return ref, "latest"
    return repo, tag


def _busybox() -> Path:
    for cand in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if cand and Path(cand).is_file():
            out = (
                subprocess.run(["file", "-L", cand], capture_output=True, text=True).stdout
                if shutil.which("file")
                else "statically linked"
            )
            if "statically linked" in out or "static-pie" in out:
                return Path(cand)
    raise InputError(
        "no static busybox on this machine: elfctl's base image is built from it",
        hint="install it: `sudo apt-get install busybox-static`",
    )


def ensure_base_image(engine, ref: str) -> tuple[bool, str]:
    """The busybox base image teams build FROM. Returns (changed, details)."""
    if engine.image_id(ref):
        return False, f"base image {ref} present"
    bb = _busybox()
    applets = subprocess.run([str(bb), "--list"], capture_output=True, text=True, check=True).stdout.split()
    files: dict[str, tuple[bytes | str, int]] = {"bin/busybox": (bb.read_bytes(), 0o755)}
    for applet in applets:
        if re.fullmatch(r"[a-z0-9_.\[\]-]+", applet) and applet != "busybox":
            files[f"bin/{applet}"] = ("busybox", 0o777)
    files["etc/passwd"] = (
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        0o644,
    )
    files["etc/group"] = (b"root:x:0:\nnogroup:x:65534:\n", 0o644)
    files["tmp/.keep"] = (b"", 0o644)
    repo, tag = _split(ref)
    engine.import_rootfs(files, repo, tag, ['CMD ["/bin/sh"]', "ENV PATH=/bin"], MANAGED)
    return True, f"built base image {ref} from {bb}"


def _libs(binary: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"(/\S+)", line.split("=>")[-1])
        if m and Path(m.group(1)).is_file():
            libs.append(Path(m.group(1)))
    return libs


def ensure_registry_image(engine, ref: str, binary: str = "/usr/bin/docker-registry") -> tuple[bool, str]:
    """An image running the distribution registry from this machine's docker-registry binary."""
    if engine.image_id(ref):
        return False, f"registry image {ref} present"
    path = Path(binary)
    if not path.is_file():
        raise InputError(
            f"registry image {ref} is not present and {binary} is missing to build it",
            hint="install it (`sudo apt-get install docker-registry`), or set registry.image to an "
            "image you have (e.g. a mirrored registry:2), or set registry.url to an external one",
        )
    files: dict[str, tuple[bytes | str, int]] = {"usr/bin/docker-registry": (path.read_bytes(), 0o755)}
    for lib in _libs(path):
        files[str(lib).lstrip("/")] = (lib.read_bytes(), 0o755)
    files["etc/docker/registry/config.yml"] = (REGISTRY_CONFIG.encode(), 0o644)
    files["var/lib/registry/.keep"] = (b"", 0o644)
    files["tmp/.keep"] = (b"", 0o644)
    repo, tag = _split(ref)
    engine.import_rootfs(
        files,
        repo,
        tag,
        ['CMD ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]', "EXPOSE 5000"],
        MANAGED,
    )
    return True, f"built registry image {ref} from {binary}"
