"""A Docker image reference, checked by the grammar of distribution/reference (what `docker`
and Kubernetes accept): [host[:port]/]path[:tag][@algorithm:hex]."""

from __future__ import annotations

import re

from elfctl.errors import InputError

_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
_DOMAIN = rf"(?:{_HOST}|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
TAG = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>[\w][\w.-]{{0,127}}))?(?:@(?P<digest>{_DIGEST}))?$",
    re.ASCII,
)
MAX_NAME = 255  # the reference library's limit on the repository name


def check_image_ref(ref: str, where: str = "--image") -> str:
    """`ref` unchanged when it is a valid image reference; else an InputError naming `where`."""
    m = _REFERENCE.match(ref) if isinstance(ref, str) else None
    if m is None or len(m["name"]) > MAX_NAME:
        raise InputError(
            f"{where}: {ref!r} is not an image reference",
            hint="write [registry[:port]/]name[:tag][@sha256:digest] with a lower-case name, "
            "e.g. localhost:5000/marketing-team:v1",
        )
    return ref


def check_tag(tag: str, where: str = "--tag") -> str:
    if not isinstance(tag, str) or not TAG.match(tag):
        raise InputError(
            f"{where}: {tag!r} is not an image tag",
            hint="use letters, digits, '_', '.' and '-', starting with a letter, digit or '_', at most 128",
        )
    return tag
