import os
import random
import re
from pathlib import Path

import pytest

from llm_engineering.errors import DocumentError
from llm_engineering.index_store.read.chunking import Chunker
from llm_engineering.index_store.read.html_text import html_to_text, tidy
from llm_engineering.index_store.read.readers import (
    ParsedDocument,
    atx_heading,
    document_units,
    read_document,
    rst_to_markdown,
)
from llm_engineering.index_store.read.text_decoding import decode_text
from tests.conftest import write_docx, write_pdf


def read(path: Path):  # type: ignore[no-untyped-def]
    return read_document(path, path.read_bytes())


def test_markdown_title_comes_from_front_matter_or_first_heading(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("---\ntitle: 'From Front'\ntags: x\n---\n# Heading\n\nBody\n")
    doc = read(path)
    assert doc.title == "From Front"
    assert doc.sections[0].first_line == 5  # lines after the front matter keep their numbers
    assert doc.sections[0].text.startswith("# Heading")
    path.write_text("```\n# not a title\n```\n\n## Real Title\n")
    assert read(path).title == "Real Title"


def test_html_keeps_headings_drops_scripts_and_takes_the_title(tmp_path: Path) -> None:
    path = tmp_path / "p.html"
    path.write_text(
        "<html><head><title>Page T</title><style>.a{}</style></head><body><h2>Part</h2>"
        "<p>Hello <b>bold</b> world</p><script>alert(1)</script><pre>code here</pre></body></html>"
    )
    doc = read(path)
    assert doc.title == "Page T"
    text = doc.sections[0].text
    assert "## Part" in text and "Hello bold world" in text and "code here" in text
    assert "alert" not in text and ".a{}" not in text


def test_pdf_text_is_read_per_page(tmp_path: Path) -> None:
    path = tmp_path / "r.pdf"
    write_pdf(path, ["First page words.", "Second page words."])
    doc = read(path)
    assert [s.page for s in doc.sections] == [1, 2]
    assert "Second page" in doc.sections[1].text


def test_docx_headings_become_markdown_headings(tmp_path: Path) -> None:
    path = tmp_path / "m.docx"
    write_docx(path, "Minutes", ["Para one.", "Para two."])
    doc = read(path)
    assert doc.title == "Minutes"
    assert doc.sections[0].text.startswith("# Minutes")
    assert "Para two." in doc.sections[0].text


def test_rst_section_titles_become_headings_without_moving_lines() -> None:
    source = "=====\nTitle\n=====\n\nIntro.\n\nSection\n-------\n\nBody.\n"
    converted = rst_to_markdown(source)
    assert converted.count("\n") == source.count("\n")
    lines = converted.split("\n")
    assert lines[1] == "# Title" and lines[6] == "## Section"


def test_code_title_is_the_file_name_and_language_is_known(tmp_path: Path) -> None:
    path = tmp_path / "x.rs"
    path.write_text("fn main() {}\n")
    doc = read(path)
    assert (doc.title, doc.kind, doc.language) == ("x.rs", "code", "rust")


def test_text_in_latin1_is_decoded() -> None:
    assert decode_text("café crème".encode("latin-1")).startswith("caf")
    assert decode_text("naïve".encode("utf-16")) == "naïve"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("bin.txt", b"\x00\x01\x02binary" * 10, "binary data"),
        ("empty.md", b"", "file is empty"),
        ("blank.md", b"  \n\n \t\n", "no text content"),
        (
            "corrupt.pdf",
            b"%PDF-1.4\nthis is not really a pdf\n%%EOF",
            "not a readable PDF|no extractable text",
        ),
        ("corrupt.docx", b"PK\x03\x04 broken zip", "not a readable DOCX"),
        ("x.unknown", b"data", "unsupported file type"),
    ],
)
def test_unreadable_content_raises_a_document_error_with_the_reason(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DocumentError, match=reason):
        read(path)


def test_truncated_pdf_is_reported_not_crashed(tmp_path: Path) -> None:
    good = tmp_path / "good.pdf"
    write_pdf(good, ["Some words here."])
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(good.read_bytes()[: os.path.getsize(good) // 3])
    with pytest.raises(DocumentError):
        read(broken)


def random_lines(alphabet: str, count: int, longest: int) -> list[str]:
    draw = random.Random(2026)
    return [
        "".join(draw.choice(alphabet) for _ in range(draw.randint(0, longest)))
        for _ in range(count)
    ]


def test_atx_headings_are_read_as_the_regular_expression_they_replace_read_them() -> None:
    # The regex backtracked quadratically on a long '# # # ... x' line; the function may not.
    regex = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
    for line in [*random_lines("# \tab", 20_000, 12), "#", "# ", "#  ", "####### x", "# a #"]:
        match = regex.match(line)
        assert atx_heading(line) == (match.group(2) if match else None), repr(line)


def test_html_whitespace_is_tidied_as_the_regular_expressions_did() -> None:
    # They were '[ \t\r\f\v]+\n' (quadratic over a long run of spaces) and '\n{3,}'.
    def by_regex(text: str) -> str:
        return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t\r\f\v]+\n", "\n", text)).strip()

    for text in random_lines(" \t\r\n\f\vab", 20_000, 14):
        assert tidy(text) == by_regex(text), repr(text)


SPHINX_PAGE = Path(__file__).parents[2] / "data" / "real-project" / "python-docs" / "library"


def test_a_sphinx_pages_permalink_marks_are_dropped() -> None:
    doc = read(SPHINX_PAGE / "functools.html")
    assert "¶" not in doc.text
    lines = doc.text.split("\n")
    assert "# functools — Higher-order functions and operations on callable objects" in lines
    assert "## partial Objects" in lines
    assert "@functools.cache(user_function)" in lines  # a definition's mark goes too


def test_other_generators_permalinks_go_and_links_with_words_stay(tmp_path: Path) -> None:
    path = tmp_path / "p.html"
    path.write_text(
        '<h2>Install<a class="header-anchor" href="#install">#</a></h2>'
        '<h2><a class="anchor" href="#usage"><svg></svg></a>Usage</h2>'
        '<h3>API<a href="#api" class="hash-link">§</a></h3>'
        '<p>See <a href="#usage">the usage</a> or <a href="x">¶</a>.</p>'
    )
    lines = read(path).text.split("\n")
    assert {"## Install", "## Usage", "### API"} <= set(lines), lines
    assert "See the usage or ¶." in lines


def spans_hold_their_chunks(doc: ParsedDocument) -> list[str]:
    """Each chunk whose lines (in the text get_document serves) do not hold its text."""
    units, pages = document_units(doc)
    chunks = Chunker(chunk_size=120, chunk_overlap=10, tokenizer=str.split).chunk(doc)
    assert chunks
    wrong = []
    for chunk in chunks:
        unit = units[pages.index(chunk.page)] if pages else units[0]
        assert chunk.start_line is not None and chunk.end_line is not None, chunk
        held = " ".join(unit.split("\n")[chunk.start_line - 1 : chunk.end_line])
        if " ".join(chunk.text.split()) not in " ".join(held.split()):
            wrong.append(f"{chunk.page} {chunk.start_line}-{chunk.end_line}: {chunk.text[:60]!r}")
    return wrong


def test_html_docx_and_pdf_chunks_carry_the_lines_of_the_text_get_document_serves(
    tmp_path: Path,
) -> None:
    assert spans_hold_their_chunks(read(SPHINX_PAGE / "functools.html")) == []
    docx = tmp_path / "m.docx"
    write_docx(docx, "Minutes", [f"Item {i}: the council discussed item {i}." for i in range(60)])
    assert spans_hold_their_chunks(read(docx)) == []
    pdf = tmp_path / "r.pdf"
    write_pdf(pdf, ["Cover page.", "\n".join(f"Finding {i} of the survey." for i in range(40))])
    doc = read(pdf)
    assert spans_hold_their_chunks(doc) == []
    assert {s.first_line for s in doc.sections} == {1}  # lines count within each page


def test_a_page_of_many_siblings_is_read_without_looking_each_up_among_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Moving a tag among N siblings scans them for its place (bs4's Tag.index): once per row
    of a long table, that was quadratic, minutes for 40,000 rows. Counted, not timed."""
    from bs4.element import Tag

    scanned = 0
    index = Tag.index

    def counting(self: Tag, element: object) -> int:
        nonlocal scanned
        found = index(self, element)
        scanned += found
        return found

    monkeypatch.setattr(Tag, "index", counting)
    rows = 2000
    page = (
        "<table>" + "<tr><td>cell</td><th>head</th></tr>" * rows + "</table>"
        + "<p>para</p><script>x</script><h2>Part<a class='headerlink' href='#p'>¶</a></h2>"
        "<pre>code</pre><ul><li>item</li></ul>" * rows
    )  # fmt: skip
    _, text = html_to_text(page, 1024, 200_000)
    assert text.count("cell | head |") == rows and text.count("```\ncode\n```") == rows
    assert text.count("## Part\n") == rows and text.count("- item") == rows and "¶" not in text
    assert scanned < rows, scanned
