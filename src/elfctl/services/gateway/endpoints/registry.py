"""The registry's routes live with the registry (services/registry/gateway_routes.py)."""

from elfctl.services.registry import gateway_routes  # noqa: F401 (importing it adds the routes)
