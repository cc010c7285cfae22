"""Questions the packaged local model writes for chunks of the real project's docs, and the
replies that are not kept as queries."""

from __future__ import annotations

from pathlib import Path

from llm_engineering.index_store.service import IndexService
from llm_engineering.retrieval.questions import _question, generated_pairs


def test_a_reply_is_kept_only_when_it_is_one_ordinary_question_of_its_own_words() -> None:
    passage = "Blueprints record operations to run when registered on an application."
    assert _question("Question: What do blueprints record?\nMore text", passage) == (
        "What do blueprints record?"
    )
    assert _question("What a great question! How can I answer it?", passage) is None
    assert _question("Blueprints record operations.", passage) is None  # not a question
    assert _question("Why?", passage) is None  # too short
    copied = "Blueprints record operations to run when registered on an application?"
    assert _question(copied, passage) is None  # the passage's own words back


def test_the_local_model_writes_questions_for_sampled_chunks(
    workspace: tuple[IndexService, Path],
) -> None:
    from llm_engineering.generation.models import open_generator

    index, _ = workspace
    generator = open_generator(index.settings)
    seen: list[tuple[int, int]] = []
    try:
        pairs = generated_pairs(index.ledger, generator, 4, lambda d, n: seen.append((d, n)))
    finally:
        generator.close()
    assert seen[-1] == (4, 4)
    assert 1 <= len(pairs) <= 4  # a reply that is not a question is dropped
    for pair in pairs:
        assert pair.query.endswith("?") and pair.text
        chunk = index.ledger.chunk(pair.positives[0])
        assert chunk is not None and chunk.text in pair.text
