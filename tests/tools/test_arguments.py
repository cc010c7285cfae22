"""A tool's bad arguments come back as one line naming the argument and what it takes, over a
real MCP client on stdio; good ones (pydantic's lax forms included) are untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.helpers import call, error_of, stdio_client

pytestmark = [pytest.mark.anyio]


async def test_each_mistake_is_one_line_with_the_allowed_values(tmp_path: Path) -> None:
    async with stdio_client(tmp_path / "data") as client:
        said = {
            "top_k 0": await error_of(client, "search_docs", query="x", top_k=0),
            "top_k text": await error_of(client, "search_docs", query="x", top_k="many"),
            "no query": await error_of(client, "search_docs"),
            "mode": await error_of(client, "search_docs", query="x", mode="fuzzy"),
            "temperature": await error_of(
                client, "answer_with_context", question="q", temperature=5
            ),
            "limit": await error_of(client, "list_documents", limit=10_000),
        }
        assert said == {
            "top_k 0": "search_docs: top_k must be between 1 and 50, got 0",
            "top_k text": 'search_docs: top_k must be a whole number, got "many"',
            "no query": "search_docs: query is required",
            "mode": 'search_docs: mode must be one of "hybrid", "dense", "keyword", got "fuzzy"',
            "temperature": "answer_with_context: temperature must be between 0.0 and 2.0, got 5",
            "limit": "list_documents: limit must be between 1 and 500, got 10000",
        }
        # what pydantic accepts still works: a number written as text, a mistake elsewhere
        found = await call(client, "search_docs", query="x", top_k="3")
        assert found["results"] == []
        both = await error_of(client, "search_docs", query="x", top_k=0, mode="fuzzy")
        assert both == (
            'search_docs: mode must be one of "hybrid", "dense", "keyword", got "fuzzy"; '
            "top_k must be between 1 and 50, got 0"
        )
