"""Reading indexed documents back, with real files of every type and the real model."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from llm_engineering.errors import PathError, UserError
from tests.conftest import link_outside, make_mixed_folder, write_docx, write_pdf

PDF_PAGES = [
    f"Page {n} of the survey. " + " ".join(f"finding{n}x{i}" for i in range(60))
    for n in range(1, 6)
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = make_mixed_folder(tmp_path / "docs")
    (docs / "guide.md").write_text(
        "---\ntitle: Guide\n---\n# Guide\n\n"
        + "\n\n".join(
            f"## Part {p}\n\n" + "\n".join(f"Line {p}.{i} about puffin{p}x{i}." for i in range(12))
            for p in range(1, 9)
        )
        + "\n"
    )
    (docs / "tool.py").write_text(
        "\n\n".join(
            f"def step_{i}(value: int) -> int:\n"
            f'    """Step {i} adds {i}."""\n'
            f"    total = value + {i}\n"
            f"    return total\n"
            for i in range(40)
        )
    )
    write_pdf(docs / "survey.pdf", PDF_PAGES)
    write_docx(docs / "memo.docx", "Memo", [f"Paragraph {i} about otters{i}." for i in range(30)])
    return docs


@pytest.fixture
def service(service_factory, folder: Path):  # type: ignore[no-untyped-def]
    service = service_factory(watch=[folder], chunk_size=64, chunk_overlap=8)
    report = service.ingest([folder])
    assert not report.failed, report.failed
    return service


def pdf_page_texts(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(io.BytesIO(path.read_bytes())).pages]


def test_a_hits_lines_from_its_chunk_id_and_from_its_path_are_the_files_own_lines(
    service, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    for query, name in [
        ("puffin5x7", "guide.md"),
        ("step_23 adds", "tool.py"),
        ("lighthouse keeper", "log.txt"),
    ]:
        hit = next(h for h in service.search(query, top_k=10)[0] if Path(h.path).name == name)
        assert hit.start_line is not None
        own = (folder / name).read_text().split("\n")[hit.start_line - 1 : hit.end_line]
        by_chunk = service.get_document(chunk_id=hit.chunk_id, around=0)
        by_path = service.get_document(path=name, start_line=hit.start_line, end_line=hit.end_line)
        assert by_chunk.text.split("\n") == own == by_path.text.split("\n"), name
        assert (by_chunk.chunk_start_line, by_chunk.chunk_end_line) == (
            hit.start_line,
            hit.end_line,
        )
        assert by_chunk.start_line == hit.start_line and by_chunk.end_line == hit.end_line


def test_around_widens_a_hit_by_lines_on_each_side_within_the_document(service) -> None:  # type: ignore[no-untyped-def]
    hit = next(h for h in service.search("puffin4x3", top_k=5)[0] if h.path.endswith("guide.md"))
    wide = service.get_document(chunk_id=hit.chunk_id, around=3)
    assert (wide.start_line, wide.end_line) == (hit.start_line - 3, hit.end_line + 3)
    assert hit.text.strip() in wide.text
    default = service.get_document(chunk_id=hit.chunk_id)
    assert (default.start_line, default.end_line) == (hit.start_line - 10, hit.end_line + 10)


def test_each_pdf_page_is_the_text_the_reader_extracted_for_it(service, folder: Path) -> None:  # type: ignore[no-untyped-def]
    extracted = pdf_page_texts(folder / "survey.pdf")
    for number, text in enumerate(extracted, start=1):
        page = service.get_document(path="survey.pdf", page=number)
        assert page.text == text and page.total_pages == 5 and page.page == number
    hit = next(h for h in service.search("finding3x41", top_k=5)[0] if h.path.endswith(".pdf"))
    around = service.get_document(chunk_id=hit.chunk_id, around=0)
    assert around.page == hit.page == 3 and hit.text.split()[0] in around.text
    several = service.get_document(path="survey.pdf", pages="2-3")
    assert (several.page, several.end_page) == (2, 3)
    assert extracted[1] in several.text and extracted[2] in several.text


def test_paging_with_max_chars_covers_every_line_once(service, folder: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("guide.md", "tool.py"):
        lines = (folder / name).read_text().split("\n")
        if lines[-1] == "":
            lines.pop()
        seen: list[str] = []
        start, calls = 1, 0
        while start is not None:
            part = service.get_document(path=name, start_line=start, max_chars=300)
            assert len(part.text) <= 300 and part.start_line == start
            seen += part.text.split("\n")
            start, calls = part.next_start_line, calls + 1
            assert part.truncated == (start is not None)
        assert seen == lines and calls > 3 and part.total_lines == len(lines), name


def test_pdf_pages_page_on_by_next_page_with_nothing_lost(service, folder: Path) -> None:  # type: ignore[no-untyped-def]
    extracted = pdf_page_texts(folder / "survey.pdf")
    got, page = [], 1
    while page is not None:
        part = service.get_document(path="survey.pdf", pages=f"{page}-5", max_chars=1500)
        got += [n for n in range(part.page, part.end_page + 1)]
        page = part.next_page
    assert got == [1, 2, 3, 4, 5]
    assert sum(len(t) for t in extracted) > 1500  # so the limit did cut


def test_docx_and_html_read_as_their_extracted_text_with_headings(service) -> None:  # type: ignore[no-untyped-def]
    memo = service.get_document(path="memo.docx")
    assert memo.text.startswith("# Memo") and "Paragraph 29 about otters29." in memo.text
    assert memo.mime_type == "text/markdown" and memo.total_lines == len(memo.text.split("\n"))
    hit = next(h for h in service.search("otters17", top_k=5)[0] if h.path.endswith(".docx"))
    near = service.get_document(chunk_id=hit.chunk_id, around=1)
    assert near.chunk_start_line is not None and "otters17" in near.text
    recipe = service.get_document(path="recipe.html")
    assert "# Risotto" in recipe.text and "var x" not in recipe.text


def test_paths_out_of_the_folder_are_refused_whatever_the_trick(
    service, folder: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nroot:x:0:0\n")
    link_outside(folder, tmp_path / "elsewhere")
    for path in ("../secret.md", str(secret), "keys/notes.md", "passwd.txt", "/etc/passwd"):
        with pytest.raises(PathError, match="outside the watched folders"):
            service.get_document(path=path)


def test_missing_unindexed_and_failed_files_say_which_and_why(service, folder: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PathError, match="does not exist"):
        service.get_document(path="nowhere.md")
    (folder / "new.md").write_text("# New\n\nnot indexed yet\n")
    with pytest.raises(PathError, match="not indexed: it is new"):
        service.get_document(path="new.md")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    service.ingest([folder])
    with pytest.raises(PathError, match="could not be indexed: not a readable PDF"):
        service.get_document(path="broken.pdf")
    with pytest.raises(UserError, match="no chunk"):
        service.get_document(chunk_id="no-such-chunk")
    with pytest.raises(UserError, match="past the end"):
        service.get_document(path="log.txt", start_line=999)


def test_a_file_changed_after_indexing_is_served_as_indexed_with_a_note(
    service, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    original = (folder / "log.txt").read_text()
    (folder / "log.txt").write_text("completely different\n")
    doc = service.get_document(path="log.txt")
    assert doc.text == original.rstrip("\n") and "changed on disk" in doc.notes[0]


def test_listing_counts_match_the_status_and_name_failures(service, folder: Path) -> None:  # type: ignore[no-untyped-def]
    (folder / "broken.docx").write_bytes(b"not a zip")
    service.ingest([folder])
    page = service.list_documents(limit=100)
    status = service.status()
    assert page.totals == {"indexed": status.documents, "pending": 0, "failed": 1}
    failed = [d for d in page.documents if d.status == "failed"]
    assert [Path(d.path).name for d in failed] == ["broken.docx"]
    assert "not a readable DOCX" in (failed[0].error or "")
    pdfs = service.list_documents(file_types=["PDF"], status=["indexed"])
    assert sorted(Path(d.path).name for d in pdfs.documents) == ["report.pdf", "survey.pdf"]
    assert all(d.uri.startswith("doc://docs/") for d in pdfs.documents)
    (folder / "waiting.md").write_text("# Waiting\n")
    pending = service.list_documents(status=["pending"], pending=[folder / "waiting.md"])
    assert [d.rel_path for d in pending.documents] == ["waiting.md"]


def test_paging_over_1000_files_returns_each_exactly_once(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "many"
    for i in range(1000):
        sub = folder / f"d{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"n{i:04}.md").write_text(f"# Note {i}\n\nnote{i}\n")
        os.utime(sub / f"n{i:04}.md", ns=(10**18 + (i % 50) * 10**9,) * 2)  # ties in mtime
    service = service_factory(watch=[folder])
    service.ingest([folder])
    for sort in ("path", "modified"):
        seen: list[str] = []
        cursor = None
        while True:
            page = service.list_documents(sort=sort, limit=137, cursor=cursor)
            seen += [d.path for d in page.documents]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 1000, sort
        keys = [(-Path(p).stat().st_mtime_ns, p) if sort == "modified" else (0, p) for p in seen]
        assert keys == sorted(keys)
    with pytest.raises(UserError, match="sorted by path"):
        service.list_documents(sort="modified", cursor=service.list_documents(limit=1).next_cursor)


def test_doc_uris_name_the_folder_and_lead_back_to_the_file(service, folder: Path) -> None:  # type: ignore[no-untyped-def]
    uri = service.document_uri(str(folder / "guide.md"))
    assert uri == "doc://docs/guide.md"
    assert service.path_for_uri("docs", "guide.md") == folder / "guide.md"
    with pytest.raises(PathError, match="outside"):
        service.path_for_uri("docs", "../secret.md")
    with pytest.raises(PathError, match="no watched or ingested folder is called 'other'"):
        service.path_for_uri("other", "guide.md")
