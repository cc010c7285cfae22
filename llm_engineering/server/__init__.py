"""The MCP server: create_server, its lifespan, stdio and streamable HTTP."""
