"""llm-engineering: an MCP server for searching, answering from, and fine-tuning on a folder of documents."""

__version__ = "0.1.0"
