"""The gateway's HTTP API, one module per capability: each adds its routes to routes.ROUTES when
imported, and the server imports every module here at start (see routes.py for the contract)."""
