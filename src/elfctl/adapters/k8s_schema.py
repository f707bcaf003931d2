"""Manifest validation against the official Kubernetes JSON schemas that ship inside the
`kubernetes-validate` package (offline; strict: unknown fields are errors)."""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=64)
def _validator(version: str, kind: str, api_version: str):
    """The strict validator of one kind, built once per process. kubernetes-validate's own
    `validate()` re-reads the 1.2 MB definitions file on every call (~15 ms an object); this is
    the same construction, cached."""
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    folder = f"kubernetes-json-schema/v{version}-local-strict"
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{api}.json", version)
    except FileNotFoundError:
        raise utils.SchemaNotFoundError(kind=kind, version=version, api_version=api_version) from None
    registry = Resource.from_contents(utils.schema_contents(f"{folder}/_definitions.json", version)) @ (
        Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate(objects: list[dict], server_version: str | None = None) -> str:
    """Raise OperationFailed naming the object and the field when one does not match its schema.
    Returns the schema version used."""
    import jsonschema
    from kubernetes_validate import utils

    version = schema_version(server_version)
    for obj in objects:
        where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            _validator(version, obj["kind"], obj["apiVersion"]).validate(obj)
        except jsonschema.ValidationError as exc:
            path = ".".join(str(p) for p in exc.absolute_path) or "(top)"
            raise OperationFailed(f"rendered {where} is not valid for Kubernetes {version}: {path}: {exc.message}",
                                  hint="fix the team.yaml field this comes from; this is an elfctl bug if the "
                                       "spec validated", code="invalid_manifest") from None
        except (utils.SchemaNotFoundError, utils.VersionNotSupportedError) as exc:
            raise OperationFailed(f"no schema to validate {where}: {exc.message}",
                                  hint="upgrade kubernetes-validate", code="invalid_manifest") from None
    return version
