"""The `cost` group with every verb registered: what `elfctl cost` runs (see cli/main.py)."""

from __future__ import annotations

from elfctl.cli.cost import (  # noqa: F401 (each verb adds its command to `app` on import)
    app,
    budget,
    check,
    dashboard,
    import_cmd,
    optimize,
    predict,
    reconcile,
    report,
)
