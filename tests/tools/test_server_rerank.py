"""`rerank`, `search_docs(rerank=true)` and `index_status` with reranking on a server, over MCP stdio.

The rerank server is a stub (no reranker model ships offline; see
tests/index_store/models/test_remote_reranking.py), scoring by the query's words in each passage.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FACTS
from tests.index_store.http_stub import http_stub
from tests.index_store.models.test_remote_reranking import overlap
from tests.server.helpers import call, indexed, names, stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_rerank_and_search_docs_use_the_rerank_server_and_index_status_says_so(
    mixed_folder: Path, tmp_path: Path
) -> None:
    with http_stub(overlap) as stub:
        client = stdio_client(
            tmp_path / "data", "--watch", str(mixed_folder), LLM_ENG_RERANKER_URL=stub.url
        )
        async with client:
            status = await wait_for_status(client, indexed(6))
            assert status["models"]["reranking"] == f"server {stub.url}"
            assert status["models"]["embeddings"].startswith("in process (")

            found = await call(
                client, "search_docs", query="saffron risotto arborio", top_k=3, rerank=True
            )
            assert found["reranker"] == f"server:reranker@{stub.url}"
            assert names(found["results"])[0] == FACTS["html"][0]

            passages = ["Trains leave every ten minutes.", "Arborio rice makes risotto creamy."]
            ranked = await call(client, "rerank", query="why is risotto creamy", documents=passages)
            assert ranked["model"] == f"server:reranker@{stub.url}"
            assert [r["index"] for r in ranked["results"]] == [1, 0]
        assert {path for path, _ in stub.requests} == {"/v1/rerank"}
