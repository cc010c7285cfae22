from pathlib import Path

import pytest

from llm_engineering.index_store.read.chunking import Chunker, line_span
from llm_engineering.index_store.read.readers import ParsedDocument, Section, read_document


def words(text: str) -> list[str]:
    return text.split()


@pytest.fixture
def chunker() -> Chunker:
    return Chunker(chunk_size=40, chunk_overlap=5, tokenizer=words)


def markdown(text: str, title: str = "Doc") -> ParsedDocument:
    return ParsedDocument(Path("/x/doc.md"), "md", "markdown", title, [Section(text, first_line=1)])


def test_markdown_is_split_at_headings_and_keeps_the_heading_path(chunker: Chunker) -> None:
    text = "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer.\n\n### Linux\n\nUse apt.\n"
    chunks = chunker.chunk(markdown(text, "Guide"))
    assert [c.heading for c in chunks] == ["Guide", "Guide › Install", "Guide › Install › Linux"]
    assert chunks[2].text.startswith("### Linux")
    assert [c.ordinal for c in chunks] == [0, 1, 2]


def test_line_numbers_point_at_the_source_lines(chunker: Chunker) -> None:
    text = "# Guide\n\nIntro text.\n\n## Install\n\nRun the installer.\nSecond line.\n"
    chunks = chunker.chunk(markdown(text))
    install = chunks[1]
    lines = text.split("\n")
    assert lines[install.start_line - 1] == "## Install"
    assert lines[install.end_line - 1] == "Second line."


def test_a_hash_inside_a_code_fence_is_not_a_heading(chunker: Chunker) -> None:
    text = "# Top\n\n```bash\n# just a comment\necho hi\n```\n"
    chunks = chunker.chunk(markdown(text))
    assert len(chunks) == 1 and "# just a comment" in chunks[0].text


def test_long_sections_are_split_within_the_size_with_overlap() -> None:
    chunker = Chunker(chunk_size=40, chunk_overlap=8, tokenizer=words)
    sentences = [f"Sentence number {i} talks about topic {i} at some length." for i in range(40)]
    chunks = chunker.chunk(markdown("# T\n\n" + " ".join(sentences)))
    assert len(chunks) > 5
    assert all(len(words(c.text)) <= 40 for c in chunks)
    # consecutive chunks share some words (the overlap)
    assert set(words(chunks[1].text)) & set(words(chunks[2].text))
    joined = " ".join(c.text for c in chunks)
    assert all(s.split()[2] in joined for s in sentences)


def test_pdf_chunks_carry_their_page() -> None:
    chunker = Chunker(chunk_size=40, chunk_overlap=5, tokenizer=words)
    doc = ParsedDocument(
        Path("/x/r.pdf"),
        "pdf",
        "pdf",
        "R",
        [Section("page one", page=1), Section("page two", page=2)],
    )
    assert [(c.page, c.text) for c in chunker.chunk(doc)] == [(1, "page one"), (2, "page two")]


def test_python_is_split_by_tree_sitter_at_definitions(tmp_path: Path) -> None:
    chunker = Chunker(chunk_size=30, chunk_overlap=5, tokenizer=words)
    functions = [
        f"def function_{i}(x):\n    value = x + {i}\n    return value * {i}\n" for i in range(12)
    ]
    source = "import os\n\n\n" + "\n\n".join(functions)
    path = tmp_path / "m.py"
    path.write_text(source)
    chunks = chunker.chunk(read_document(path, path.read_bytes()))
    assert len(chunks) > 1
    lines = source.split("\n")
    for chunk in chunks:
        assert chunk.start_line is not None and chunk.end_line is not None
        first = chunk.text.split("\n")[0].strip()
        assert lines[chunk.start_line - 1].strip() == first
        assert len(words(chunk.text)) <= 30
    # no function is cut in half: every def line starts a chunk or sits inside one whole
    for i in range(12):
        holder = [c for c in chunks if f"def function_{i}(" in c.text]
        assert holder and f"return value * {i}" in holder[0].text


def test_code_without_a_grammar_falls_back_to_line_windows() -> None:
    chunker = Chunker(chunk_size=20, chunk_overlap=6, tokenizer=words)  # a line costs 5
    source = "\n".join(f"key_{i} = value {i}" for i in range(30))
    doc = ParsedDocument(
        Path("/x/c.toml"), "toml", "code", "c.toml", [Section(source, first_line=1)], "toml"
    )
    chunks = chunker.chunk(doc)
    assert len(chunks) > 2
    assert chunks[0].start_line == 1
    assert chunks[-1].end_line == 30
    assert chunks[1].start_line <= chunks[0].end_line  # overlapping windows
    for chunk in chunks:
        assert chunk.text.split("\n")[0] == source.split("\n")[chunk.start_line - 1]


def test_embedding_text_leads_with_the_heading_only_when_missing() -> None:
    chunker = Chunker(chunk_size=12, chunk_overlap=2, tokenizer=words)
    text = "# Title\n\n" + " ".join(f"word{i}." for i in range(30))
    chunks = chunker.chunk(markdown(text, "Title"))
    assert chunks[0].embedding_text() == chunks[0].text
    assert chunks[1].embedding_text() == "Title\n" + chunks[1].text


def test_line_span_counts_from_the_first_line() -> None:
    source = "a\nb\nc\nd\n"
    assert line_span(source, source.index("c"), "c\nd\n", 10) == (12, 13)


def test_a_heading_with_no_text_of_its_own_leads_the_section_it_heads(chunker: Chunker) -> None:
    text = (
        "# Sourdough Bread\n\n## Oven\n\nBake at 250 °C for 20 minutes.\n\n"
        "## Shaping\n\nFold twice.\n\n# Appendix\n"
    )
    chunks = chunker.chunk(markdown(text, "Sourdough Bread"))
    assert [c.heading for c in chunks] == [
        "Sourdough Bread › Oven",
        "Sourdough Bread › Shaping",
        "Sourdough Bread › Appendix",  # the last heading has nothing after it: kept
    ]
    oven = chunks[0]
    assert oven.text.startswith("# Sourdough Bread") and "250 °C" in oven.text
    assert (oven.start_line, oven.end_line) == (1, 5)
    assert all(
        any(not line.startswith("#") for line in c.text.splitlines() if line.strip())
        for c in chunks[:2]
    )
