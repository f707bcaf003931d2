"""Manifest validation against the official Kubernetes JSON schemas that ship inside the
`kubernetes-validate` package (offline; strict: unknown fields are errors)."""

from __future__ import annotations

import re

from elfctl.errors import OperationFailed


def _version_tuple(v: str) -> tuple[int, int]:
    m = re.match(r"v?(\d+)\.(\d+)", v or "")
    return (int(m[1]), int(m[2])) if m else (0, 0)


def schema_version(server_version: str | None) -> str:
    """The shipped schema for the cluster's minor version; the nearest one outside the shipped
    range (a cluster newer than the package validates against the newest schemas)."""
    from kubernetes_validate import utils

    shipped = sorted(utils.all_versions(), key=_version_tuple)
    if not server_version:
        return shipped[-1]
    want = _version_tuple(server_version)
    older = [v for v in shipped if _version_tuple(v) <= want]
    return older[-1] if older else shipped[0]


def validate(objects: list[dict], server_version: str | None = None) -> str:
    """Raise OperationFailed naming the object and the field when one does not match its schema.
    Returns the schema version used."""
    from kubernetes_validate import utils

    version = schema_version(server_version)
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            utils.validate(obj, version, strict=True)
        except utils.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path) or "(top)"
            raise OperationFailed(f"rendered {where} is not valid for Kubernetes {version}: {path}: {exc.message}",
                                  hint="fix the team.yaml field this comes from; this is an elfctl bug if the "
                                       "spec validated", code="invalid_manifest") from None
        except (utils.SchemaNotFoundError, utils.VersionNotSupportedError) as exc:
            raise OperationFailed(f"no schema to validate {where}: {exc.message}",
                                  hint="upgrade kubernetes-validate", code="invalid_manifest") from None
    return version
