"""The searchable index: readers, chunking, ingestion, Chroma vectors, BM25, fusion.

Nothing here knows about MCP: the server, the CLI, the tests and the benchmarks all call
:class:`~llm_engineering.index_store.service.IndexService`.
"""
