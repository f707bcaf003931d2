"""Images elfctl builds from this machine's own binaries, because nothing can be pulled:
a busybox base image for teams (and the switch proxy), and a registry image around Debian's
`docker-registry`. Both are `docker import`s of a small rootfs; rebuilt only when missing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from elfctl.adapters import wheelhouse
from elfctl.errors import ElfError, InputError, OperationFailed, Unreachable

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


# --- Python images: the base of the gateway and of Python teams ---------------------------------------

PYTHON_REF = "elfctl/python:3.11"  # the local name Python images build FROM, whatever its source
DEBIAN_SUITE = "bookworm"  # its python3 is 3.11: the host's wheels (cp311, manylinux) run on it
# tzdata: zoneinfo finds no time zone (not even UTC) without it, and the store asks for UTC.
DEBIAN_PACKAGES = ("python3-minimal", "libpython3.11-stdlib", "ca-certificates", "tzdata")
FALLBACK_FOR = "elfctl.python-fallback-for"  # on a Debian-built image: the deploy.python_image it stands in for
PACKAGES = "elfctl.python-packages"  # on a Debian-built image: what it was built with (a change rebuilds it)


def ensure_python_image(engine, source: str, ref: str = PYTHON_REF) -> tuple[bool, str]:
    """`ref` as a copy (tag) of `source` (deploy.python_image) when that is here or can be pulled,
    else built from Debian's packages with mmdebstrap. A built image stands in for `source` until
    deploy.python_image names another one, so re-runs neither pull nor build again."""
    have, why = engine.image_id(ref), ""
    if source != ref:
        src_id = engine.image_id(source)
        if src_id is None and not (have and _built_for(engine, ref, source)):
            try:
                engine.pull(*_split(source))
                src_id = engine.image_id(source)
            except ElfError as exc:
                why = exc.message
        if src_id:
            if src_id == have:
                return False, f"python image {ref} present ({source})"
            engine.tag(source, *_split(ref))
            return True, f"python image {ref} is {source}"
    elif have:
        return False, f"python image {ref} present"
    if have and _built_for(engine, ref, source):
        return False, f"python image {ref} present (built from Debian {DEBIAN_SUITE}; {source} cannot be pulled)"
    seconds = _debian_python(engine, ref, source)
    reason = f"{source} could not be pulled ({why}); " if why else ""
    return True, f"{reason}built python image {ref} from Debian {DEBIAN_SUITE} packages in {seconds:.0f}s"


def _built_for(engine, ref: str, source: str) -> bool:
    """`ref` was built from Debian, standing in for `source`, with today's package list."""
    labels = engine.image_labels(ref)
    return labels.get(FALLBACK_FOR) == source and labels.get(PACKAGES) == ",".join(DEBIAN_PACKAGES)


def _debian_python(engine, ref: str, source: str) -> float:
    import tempfile
    import time

    tool = shutil.which("mmdebstrap")
    if tool is None:
        raise InputError(
            f"python image {ref}: {source} cannot be pulled and mmdebstrap is missing to build one",
            hint="install it (`sudo apt-get install mmdebstrap`, or `scripts/system-deps`), "
            "or set deploy.python_image to a Python 3.11 image this engine has",
        )
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="elfctl-python-") as tmp:
        out = Path(tmp) / "rootfs.tar"
        cmd = [tool, "--quiet", "--variant=essential", f"--include={','.join(DEBIAN_PACKAGES)}",
               DEBIAN_SUITE, str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            raise Unreachable(f"python image {ref}: mmdebstrap did not finish in 15 min",
                              hint="check the Debian mirror in /etc/apt/sources.list") from None
        if proc.returncode != 0:
            tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])[:400]
            raise Unreachable(f"python image {ref}: mmdebstrap failed (exit {proc.returncode}): {tail}",
                              hint="it fetches Debian packages: check the mirror in /etc/apt/sources.list, "
                              "or set deploy.python_image to a Python 3.11 image this engine has")
        engine.import_tar(str(out), *_split(ref),
                          ["ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                           "ENV LANG=C.UTF-8", "ENV PYTHONUNBUFFERED=1", 'CMD ["python3"]'],
                          {**MANAGED, FALLBACK_FOR: source, PACKAGES: ",".join(DEBIAN_PACKAGES)})
    return time.monotonic() - t0


# --- the gateway image: elfctl from a wheelhouse built on the host (adapters/wheelhouse.py) ---------------

GATEWAY_REPO = "elfctl/gateway"
CONTENT = "elfctl.content"  # label: the hash of what the image holds (python image, elfctl, its dependencies)
GATEWAY_DOCKERFILE = """\
# elfctl's LLM gateway. Every wheel comes from the build context: nothing is fetched in the build.
# The dependencies are one layer and elfctl another, so a change to elfctl alone reuses the first.
FROM {python} AS install
COPY deps /deps
RUN python3 /deps/{pip}/pip install --quiet --no-index --find-links /deps --target /opt/deps \\
    -r /deps/requirements.txt
COPY elfctl /elfctl
RUN python3 /deps/{pip}/pip install --quiet --no-index --no-deps --target /opt/elfctl /elfctl/*.whl
FROM {python}
COPY --from=install /opt/deps /opt/deps
COPY --from=install /opt/elfctl /opt/elfctl
ENV PYTHONPATH=/opt/elfctl:/opt/deps PYTHONUNBUFFERED=1 ELFCTL_GATEWAY_HOST=0.0.0.0
WORKDIR /project
HEALTHCHECK --interval=3s --timeout=3s --start-period=60s --retries=3 CMD ["python3", "-c", \\
    "import os, urllib.request as u; \\
u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('ELFCTL_GATEWAY_PORT', '18400'), timeout=2)"]
ENTRYPOINT ["python3", "-m", "elfctl"]
CMD ["gateway", "serve"]
"""


def gateway_content(engine, python_ref: str) -> tuple[str, Path | None, dict[str, str], list[str]]:
    """(content hash, source checkout, pinned dependencies, requirements pip resolves): the
    image's tag and label."""
    import hashlib

    root, code = wheelhouse.elfctl_source()
    pins, absent = wheelhouse.installed_closure(wheelhouse.declared_requirements(root))
    h = hashlib.sha256()
    for part in (engine.image_id(python_ref) or python_ref, code, GATEWAY_DOCKERFILE, *absent,
                 *(f"{k}=={v}" for k, v in sorted(pins.items()))):
        h.update(part.encode() + b"\n")
    return h.hexdigest()[:16], root, pins, absent


def ensure_gateway_image(engine, python_ref: str, wheel_cache: Path,
                         repo: str = GATEWAY_REPO) -> tuple[bool, str, str]:
    """The gateway image `repo:<content hash>`: built only when the python image, elfctl or its
    dependencies changed. Returns (changed, details, image ref)."""
    content, root, pins, absent = gateway_content(engine, python_ref)
    ref = f"{repo}:{content}"
    if engine.image_id(ref):
        return False, f"gateway image {ref} present", ref
    import tempfile
    import time

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="elfctl-gateway-") as tmp:
        ctx = Path(tmp)
        (ctx / "deps").mkdir()
        (ctx / "elfctl").mkdir()
        wheels = wheelhouse.build(root, pins, absent, wheel_cache, ctx / "deps")
        pip = next((w for w in wheels if wheelhouse.norm(w.split("-")[0]) == "pip"), None)
        if pip is None:
            raise OperationFailed("gateway image: the wheelhouse has no pip wheel to install with",
                                  hint=f"check pip's output; remove {wheel_cache} to start over")
        for w in wheels:
            if wheelhouse.norm(w.split("-")[0]) == "elfctl":
                (ctx / "deps" / w).rename(ctx / "elfctl" / w)
        reqs = [f"{k}=={v}" for k, v in sorted(pins.items())] + absent
        (ctx / "deps" / "requirements.txt").write_text("\n".join(reqs) + "\n")
        (ctx / "Dockerfile").write_text(GATEWAY_DOCKERFILE.format(python=python_ref, pip=pip))
        engine.build(str(ctx), "Dockerfile", ref, {**MANAGED, "elfctl.role": "gateway", CONTENT: content})
    try:  # older builds of this repo; one a container still uses is kept
        for img in engine.images(label="elfctl.role=gateway"):
            for old in img.get("RepoTags") or []:
                if old.startswith(repo + ":") and old != ref:
                    engine.remove_image(old)
    except ElfError:  # a busy engine: they go at the next build or `infra down --purge`
        pass
    return True, f"built gateway image {ref} in {time.monotonic() - t0:.0f}s", ref
