"""elfctl: the control tool for a platform of AI-agent teams.

Kept import-free on purpose: `elfctl --help` must stay instant (see DESIGN.md, "Start-up").
"""

__version__ = "0.1.0"
