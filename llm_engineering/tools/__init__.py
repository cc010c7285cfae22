"""MCP tools: thin functions that validate, call one service, and shape the result."""
