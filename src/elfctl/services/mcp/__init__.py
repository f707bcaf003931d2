"""MCP servers: declared once as registry entries of kind `mcp`, checked with the official SDK, handed
to the teams that name them."""
