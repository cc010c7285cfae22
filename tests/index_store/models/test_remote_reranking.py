"""Reranking over HTTP, against the exchanges of vLLM, TEI, infinity and llama.cpp's server.

No reranker model ships offline (no cross-encoder wheel, no reranker GGUF), so no real
rerank server runs here. Each server is stood in for by a stub that answers as that
server's API does: the paths it serves (and its 404 elsewhere), the request shape it
takes (and its refusal of the other), and its answer in its own field names and order,
written from each project's API reference and source (llama.cpp's from the source
distribution installed here). The scores are the stub's own, not a model's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llm_engineering.errors import ServerError
from llm_engineering.index_store.models.remote_reranking import ServerReranker, rerank_routes
from llm_engineering.index_store.models.reranking import Candidate
from tests.conftest import FACTS
from tests.index_store.http_stub import http_stub

QUERY = "what do cats eat?"
DOCUMENTS = [
    "Cats are obligate carnivores: they eat meat.",
    "The stock market fell two percent today.",
    "Kittens drink their mother's milk.",
]
SCORES = {0: 0.9984, 2: 0.4097, 1: 0.00011}


def vllm(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    if path not in ("/rerank", "/v1/rerank", "/v2/rerank"):
        return 404, {"detail": "Not Found"}
    if "documents" not in body:
        return 400, {"object": "error", "message": "Field required: documents", "type": "BadRequestError", "code": 400}  # fmt: skip
    return 200, {
        "id": "rerank-5c3e1f0b8a9d4e2f",
        "model": body.get("model", "BAAI/bge-reranker-base"),
        "usage": {"total_tokens": 61},
        "results": [
            {"index": i, "document": {"text": body["documents"][i]}, "relevance_score": s}
            for i, s in SCORES.items()
        ],
    }


def tei(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    if path != "/rerank":
        return 404, ""
    if "texts" not in body:
        return 422, "Failed to deserialize the JSON body into the target type: missing field `texts` at line 1 column 97"  # fmt: skip
    return 200, [{"index": i, "score": s} for i, s in SCORES.items()]


def infinity(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    if path != "/rerank":
        return 404, {"detail": "Not Found"}
    if "documents" not in body:
        return 422, {"detail": [{"type": "missing", "loc": ["body", "documents"], "msg": "Field required"}]}  # fmt: skip
    return 200, {
        "object": "rerank",
        "results": [
            {"relevance_score": s, "index": i, "document": None} for i, s in SCORES.items()
        ],
        "model": "mixedbread-ai/mxbai-rerank-xsmall-v1",
        "usage": {"prompt_tokens": 58, "total_tokens": 58},
        "id": "infinity-0b8c3d2e-7f41-4a55-9d0e-2c6b1e8f9a37",
        "created": 1732851234,
    }


def llama_cpp(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    if path not in ("/rerank", "/reranking", "/v1/rerank", "/v1/reranking"):
        return 404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}
    ranks = [{"index": i, "relevance_score": s} for i, s in SCORES.items()]
    return 200, {
        "model": body.get("model", "bge-reranker-v2-m3-Q8_0.gguf"),
        "object": "list",
        "usage": {"prompt_tokens": 60, "total_tokens": 60},
        "results": ranks,
    }


SERVERS = {
    "vllm": (vllm, "/v1/rerank", "documents"),
    "tei": (tei, "/rerank", "texts"),
    "infinity": (infinity, "/rerank", "documents"),
    "llama.cpp": (llama_cpp, "/v1/rerank", "documents"),
}


@pytest.mark.parametrize("server", list(SERVERS))
def test_each_servers_exchange_orders_the_passages_and_names_the_reranker(server: str) -> None:
    answer, path, shape = SERVERS[server]
    with http_stub(answer) as stub:
        reranker = ServerReranker(stub.url, retries=0)
        scores = reranker.score(QUERY, [Candidate(text) for text in DOCUMENTS])
        assert scores == [SCORES[i] for i in range(3)]
        served_path, body = stub.requests[-1]
        assert served_path == path and body[shape] == DOCUMENTS and body["query"] == QUERY
        assert reranker.name.startswith("server:") and reranker.name.endswith(f"@{stub.url}")

        reranker.score(QUERY, [Candidate(text) for text in DOCUMENTS])
        assert stub.requests[-1][0] == path, "the endpoint found first is kept"
        tries = len(stub.requests)
    assert tries == {"vllm": 2, "tei": 4, "infinity": 3, "llama.cpp": 2}[server]


def test_a_model_name_is_sent_and_an_endpoint_given_whole_is_used_as_it_is() -> None:
    with http_stub(vllm) as stub:
        reranker = ServerReranker(f"{stub.url}/v2/rerank", "BAAI/bge-reranker-base", retries=0)
        reranker.score(QUERY, [Candidate(text) for text in DOCUMENTS])
        assert stub.requests == [
            ("/v2/rerank", {"query": QUERY, "documents": DOCUMENTS, "model": "BAAI/bge-reranker-base"})
        ]  # fmt: skip
        assert reranker.name == f"server:BAAI/bge-reranker-base@{stub.url}/v2/rerank"
    assert rerank_routes("http://h:8000/v1") == ["http://h:8000/v1/rerank"]


def test_many_passages_go_in_batches_and_every_score_keeps_its_place() -> None:
    def by_length(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        texts = body["documents"]
        ranked = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        return 200, [{"index": i, "score": float(len(texts[i]))} for i in ranked]

    texts = ["x" * (n % 37 + 1) for n in range(70)] + [""]
    with http_stub(by_length) as stub:
        scores = ServerReranker(f"{stub.url}/rerank", retries=0).score(
            QUERY, [Candidate(text) for text in texts]
        )
        sizes = sorted(len(body["documents"]) for _, body in stub.requests)
    assert sizes == [7, 32, 32]
    assert scores[:70] == [float(len(text)) for text in texts[:70]]
    assert scores[70] < min(scores[:70]), "an empty passage ranks last"


def test_a_failing_server_is_tried_again_then_reported_with_its_own_error() -> None:
    answers = iter([(503, {"error": {"message": "loading model"}})])

    def flaky(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return next(answers, None) or llama_cpp(path, body)

    with http_stub(flaky) as stub:
        reranker = ServerReranker(stub.url, retries=1)
        assert reranker.score(QUERY, [Candidate(text) for text in DOCUMENTS])[0] == SCORES[0]
        assert len(stub.requests) == 2

    def broken(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        return 500, {"error": {"code": 500, "message": "CUDA error: out of memory"}}

    with (
        http_stub(broken) as stub,
        pytest.raises(ServerError, match=r"CUDA error: out of memory \(after 2 tries\)"),
    ):
        ServerReranker(stub.url, retries=1).score(QUERY, [Candidate("a")])

    with http_stub(lambda path, body: (401, {"error": "bad key"})) as stub:
        with pytest.raises(ServerError, match="LLM_ENG_RERANKER_API_KEY"):
            ServerReranker(stub.url, api_key="wrong", retries=3).score(QUERY, [Candidate("a")])
        assert len(stub.requests) == 1, "a refused key is not tried again"


def overlap(path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """A stub answering in TEI's shape, scoring by the query's words in each passage."""
    words = set(body["query"].lower().split())
    texts = body.get("documents") or body["texts"]
    scores = [len(words & set(text.lower().split())) for text in texts]
    return 200, [{"index": i, "score": float(s)} for i, s in enumerate(scores)]


def test_search_with_rerank_uses_the_server_and_status_says_where_reranking_runs(
    service_factory, mixed_folder: Path
) -> None:  # type: ignore[no-untyped-def]
    with http_stub(overlap) as stub:
        service = service_factory(watch=[mixed_folder], reranker_url=stub.url)
        assert service.status().reranking == f"server {stub.url}"
        service.ingest([mixed_folder])
        hits, _ = service.search("saffron risotto arborio", top_k=3, rerank=True)
        assert Path(hits[0].path).name == FACTS["html"][0]
        assert {hit.reranker for hit in hits} == {f"server:reranker@{stub.url}"}
        assert stub.requests[-1][0] == "/v1/rerank"
        assert service.status().embeddings.startswith("in process")
