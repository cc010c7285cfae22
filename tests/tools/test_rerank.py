"""`rerank` and `search_docs(rerank=true)` over a real MCP stdio connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FACTS
from tests.server.helpers import indexed, names, search, stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_search_can_rerank_and_rerank_orders_given_passages(
    mixed_folder: Path, tmp_path: Path
) -> None:
    async with stdio_client(tmp_path / "data", "--watch", str(mixed_folder)) as client:
        await wait_for_status(client, indexed(6))
        result = await client.call_tool(
            "search_docs", {"query": "saffron risotto with arborio", "top_k": 3, "rerank": True}
        )
        assert not result.is_error, result.content
        content = result.structured_content
        assert len(content["results"]) == 3
        assert content["reranker"].startswith("offline:")
        assert all(hit["reranker"] == content["reranker"] for hit in content["results"])
        assert names(content["results"])[0] == FACTS["html"][0]
        plain = await search(client, "saffron risotto with arborio", top_k=3)
        assert all(hit["reranker"] is None for hit in plain)

        passages = [
            "The harbour master checks the tide tables each morning.",
            "",
            "Arborio rice releases starch, which makes risotto creamy.",
            "Trains leave the station every ten minutes.",
        ]
        result = await client.call_tool(
            "rerank", {"query": "why is risotto creamy", "documents": passages, "top_n": 3}
        )
        assert not result.is_error, result.content
        ranked = result.structured_content
        assert ranked["model"].startswith("offline:")
        assert ranked["results"][0]["index"] == 2
        assert len(ranked["results"]) == 3 and 1 not in [r["index"] for r in ranked["results"]]

        too_many = await client.call_tool("rerank", {"query": "x", "documents": ["d"] * 201})
        assert too_many.is_error and "200" in too_many.content[0].text
        empty = await client.call_tool("rerank", {"query": " ", "documents": ["d"]})
        assert empty.is_error and "query is empty" in empty.content[0].text
        nothing = await client.call_tool("rerank", {"query": "x", "documents": []})
        assert nothing.is_error and "documents is empty" in nothing.content[0].text
