"""Files built to hurt: zip bombs, legacy code pages, links leading out of the folder, pages
nested too deep, too many elements or pages, names that are not UTF-8, NULs past the start."""

import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path

import pytest

from llm_engineering.errors import DocumentError, PathError
from llm_engineering.index_store.read.readers import ReadLimits, read_document
from tests.conftest import OUTSIDE_SECRETS, link_outside, write_docx, write_pdf


def inflate_docx(source: Path, target: Path, padding: int) -> None:
    """A copy of ``source`` whose document.xml carries ``padding`` more bytes of spaces."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == "word/document.xml":
                data = data.replace(b"</w:body>", b" " * padding + b"</w:body>")
            new.writestr(item, data, compress_type=zipfile.ZIP_DEFLATED)


def test_a_docx_that_inflates_past_the_ratio_limit_is_failed_without_being_parsed(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    plain = tmp_path / "plain.docx"
    write_docx(plain, "Minutes", ["The harbour pilots voted on tugboat schedules."])
    inflate_docx(plain, folder / "bomb.docx", padding=30 * 1048576)
    assert (folder / "bomb.docx").stat().st_size < 200_000
    service = service_factory()
    report = service.ingest([folder])
    assert [f.path for f in report.failed] == [str(folder / "bomb.docx")]
    assert "word/document.xml is compressed" in report.failed[0].error
    assert "100:1" in report.failed[0].error
    assert service.search("tugboat schedules", mode="keyword")[0] == []


def test_a_docx_that_unpacks_past_max_unpacked_mb_is_failed_naming_the_setting(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    write_docx(folder / "small.docx", "Small", ["Lighthouse keepers log the fog."])
    write_docx(tmp_path / "plain.docx", "Large", ["Cargo manifests are checked twice."])
    inflate_docx(tmp_path / "plain.docx", folder / "large.docx", padding=1048576)
    service = service_factory(max_unpacked_mb=1.5)
    report = service.ingest([folder])
    assert [Path(f.path).name for f in report.failed] == ["large.docx"]
    assert "max_unpacked_mb" in report.failed[0].error
    assert "over the 1.5 MiB limit" in report.failed[0].error
    assert report.added == 1
    status = service.status()
    assert [Path(f.path).name for f in status.failed] == ["large.docx"]


def test_latin1_text_is_decoded_as_western_european_text(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "menu.txt").write_bytes("Dessert: crème brûlée\nCafé au lait\n".encode("latin-1"))
    (folder / "polski.txt").write_bytes("Zażółć gęślą jaźń\n".encode("cp1250"))
    service = service_factory(watch=[folder])
    service.ingest([folder])
    menu = service.get_document(path=str(folder / "menu.txt"))
    assert "crème brûlée" in menu.text and "Café au lait" in menu.text
    polish = service.get_document(path=str(folder / "polski.txt"))
    assert "Zażółć gęślą jaźń" in polish.text


def test_links_leading_out_of_the_watched_folder_are_listed_as_skipped_and_never_read(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "real.md").write_text("# Real\n\nOrchard pruning calendar.\n")
    link_outside(folder, tmp_path / "outside")
    (folder / "alias.md").symlink_to(folder / "real.md")  # inside: read through
    service = service_factory(watch=[folder])

    report = service.ingest([folder])
    failed = {Path(f.path).name: f.error for f in report.failed}
    assert set(failed) == {"passwd.txt", "keys"}
    assert "outside the watched folders" in failed["passwd.txt"]
    assert "never read" in failed["passwd.txt"] and "not followed" in failed["keys"]
    assert report.added == 2  # real.md and the link to it
    for query in OUTSIDE_SECRETS:
        assert service.search(query, mode="keyword")[0] == []
    # The watcher's path: one changed link, synced on its own.
    (folder / "passwd2.txt").symlink_to(tmp_path / "outside" / "passwd")
    report = service.sync([folder / "passwd2.txt"])
    assert [Path(f.path).name for f in report.failed] == ["passwd2.txt"]
    assert service.search(OUTSIDE_SECRETS[0], mode="keyword")[0] == []


def nested_html(depth: int, text: str = "deep text") -> bytes:
    return ("<html><body>" + "<div>" * depth + text + "</div>" * depth + "</body></html>").encode()


def test_html_nested_past_max_html_depth_is_refused_as_the_tree_is_built() -> None:
    # 100,000 levels took 8 minutes of quadratic tree edits; the builder stops at the limit.
    with pytest.raises(DocumentError, match=r"more than 1024 deep.*\(max_html_depth\)"):
        read_document(Path("deep.html"), nested_html(100_000))
    with pytest.raises(DocumentError, match=r"more than 40 deep.*\(max_html_depth\)"):
        read_document(Path("deep.html"), nested_html(50), ReadLimits(max_html_depth=40))
    assert "deep text" in read_document(Path("ok.html"), nested_html(30)).sections[0].text


def test_html_with_more_elements_than_max_html_elements_is_refused() -> None:
    page = ("<html><body>" + "<p>row</p>" * 500 + "</body></html>").encode()
    with pytest.raises(DocumentError, match=r"more than 400 elements.*\(max_html_elements\)"):
        read_document(Path("wide.html"), page, ReadLimits(max_html_elements=400))
    assert read_document(Path("wide.html"), page, ReadLimits(max_html_elements=600)).text


def test_a_pdf_with_more_pages_than_max_pdf_pages_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.pdf"
    write_pdf(path, ["one", "two", "three"])
    with pytest.raises(DocumentError, match=r"3 pages, past the 2 page limit \(max_pdf_pages\)"):
        read_document(path, path.read_bytes(), ReadLimits(max_pdf_pages=2))
    assert len(read_document(path, path.read_bytes(), ReadLimits(max_pdf_pages=3)).sections) == 3


def test_html_and_pdf_limits_reach_the_index_as_failures_naming_the_setting(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "deep.html").write_bytes(nested_html(100_000))
    write_pdf(folder / "long.pdf", ["one", "two", "three"])
    (folder / "fine.md").write_text("# Fine\n\nThe orchard ladder inventory.\n")
    service = service_factory(watch=[folder], max_pdf_pages=2)
    report = service.ingest([folder])
    failed = {Path(f.path).name: f.error for f in report.failed}
    assert "(max_html_depth)" in failed.pop("deep.html")
    assert "(max_pdf_pages)" in failed.pop("long.pdf")
    assert failed == {} and report.added == 1
    assert {Path(f.path).name for f in service.status().failed} == {"deep.html", "long.pdf"}


def test_a_file_that_overruns_parse_timeout_s_is_failed_and_the_others_are_indexed(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "deep.html").write_bytes(nested_html(100_000))
    for name in ("a", "b", "c"):
        (folder / f"{name}.md").write_text(f"# {name}\n\nThe lamplighter's route {name}9q.\n")
    # No depth limit: the page's parser runs until parse_timeout_s stops its process.
    service = service_factory(watch=[folder], parse_timeout_s=3, max_html_depth=10**7)
    report = service.ingest([folder])
    assert [Path(f.path).name for f in report.failed] == ["deep.html"]
    assert "longer than 3 s" in report.failed[0].error
    assert "(parse_timeout_s)" in report.failed[0].error
    assert report.added == 3
    for name in ("a", "b", "c"):
        hits, _ = service.search(f"{name}9q", mode="keyword")
        assert [Path(h.path).name for h in hits] == [f"{name}.md"]


def test_text_with_nul_bytes_or_control_characters_past_its_first_64_kb_is_refused_as_binary() -> (
    None
):
    text = b"The harbour pilots log the tide.\n" * 2200  # 72 KB of honest text
    for name, data in [
        ("tail.txt", text + b"\x00" * 5_000_000),
        ("tail.md", text + b"\x00" * 10 + text),
        ("tail.html", b"<p>" + text + b"</p>" + b"\x00"),
        ("wide.txt", b"\xff\xfe" + (text.decode() + "\x00" * 100).encode("utf-16-le")),
    ]:
        with pytest.raises(DocumentError, match=r"binary data, not text \(NUL"):
            read_document(Path(name), data)
    assert read_document(Path("fine.txt"), text).text == text.decode()
    western = "Crème brûlée at the harbour café.\n".encode("cp1252") * 8000  # 270 KB, not UTF-8
    with pytest.raises(DocumentError, match=r"binary data, not text \(control characters"):
        read_document(Path("tail.txt"), western + b"\x01" * 5_000_000)
    assert "Crème brûlée" in (read_document(Path("fine.txt"), western).text or "")


def write_raw(folder: Path, *names: bytes, data: bytes = b"x\n") -> Path:
    """A file whose path below ``folder`` is these raw bytes (any of them may not be UTF-8)."""
    raw = os.path.join(os.fsencode(folder), *names)
    os.makedirs(os.path.dirname(raw), exist_ok=True)
    with open(raw, "wb") as handle:
        handle.write(data)
    return Path(os.fsdecode(raw))


def test_a_name_that_is_not_utf8_is_one_failed_entry_shown_escaped_while_the_rest_index(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThe cormorant census of the estuary.\n")
    bad = write_raw(folder, b"bad-\xff.md")
    inner = write_raw(folder, b"sub-\xfe", b"inner.md", data=b"# Inner\n\nheron rota\n")
    shown = {str(folder / "bad-\\xff.md"): bad, str(folder / "sub-\\xfe" / "inner.md"): inner}
    service = service_factory(watch=[folder])

    report = service.ingest([folder])
    failed = {f.path: f.error for f in report.failed}
    assert set(failed) == set(shown), failed
    assert "file name is not valid UTF-8" in failed[str(folder / "bad-\\xff.md")]
    assert "folder name" in failed[str(folder / "sub-\\xfe" / "inner.md")]
    assert all("rename" in error for error in failed.values())
    assert report.added == 1
    hits, _ = service.search("cormorant census", mode="keyword")
    assert [Path(h.path).name for h in hits] == ["good.md"]
    # What the index hands out crosses SQLite and JSON-RPC: it must encode as UTF-8.
    listing = service.list_documents(pending=[bad, inner])
    assert {d.path for d in listing.documents if d.status == "failed"} == set(shown)
    json.dumps([asdict(d) for d in listing.documents], ensure_ascii=False).encode()
    assert {f.path for f in service.status().failed} == set(shown)
    with pytest.raises(PathError, match="not valid UTF-8"):
        service.get_document(path=str(folder / "bad-\\xff.md"))

    again = service.ingest([folder])  # the entries are recognised, not forgotten and re-made
    assert (again.added, again.removed, len(again.failed)) == (0, 0, 2)
    os.unlink(bad)
    assert service.sync([bad]).removed == 1  # the watcher names the deleted file as it was
    os.unlink(inner)
    os.rmdir(inner.parent)
    assert service.ingest([folder]).removed == 1
    assert service.status().failed == [] and service.status().documents == 1


def test_a_scan_resolves_only_links_and_still_refuses_each_that_leads_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolving every file was 44 % of an unchanged re-index of 50,000 files: the walk enters
    no linked folder, so a plain file below the root is inside. Links are still resolved, one
    by one."""
    from llm_engineering import paths
    from llm_engineering.index_store.read.scanning import scan_folder

    folder = tmp_path / "docs"
    (folder / "a" / "b").mkdir(parents=True)
    for name in ("top.md", "a/mid.md", "a/b/deep.md"):
        (folder / name).write_text("# Note\n\nText.\n")
    link_outside(folder, tmp_path / "outside")
    (folder / "a" / "alias.md").symlink_to(folder / "a" / "b" / "deep.md")
    resolved: list[str] = []
    real = os.path.realpath
    monkeypatch.setattr(
        paths.os.path, "realpath", lambda p, **k: resolved.append(str(p)) or real(p, **k)
    )

    found = {
        f.path.relative_to(folder).as_posix(): f.problem
        for f in scan_folder(folder, roots=[folder])
    }
    assert {name for name, problem in found.items() if problem is None} == {
        "top.md", "a/mid.md", "a/b/deep.md", "a/alias.md",
    }  # fmt: skip
    assert "outside the watched folders" in (found["passwd.txt"] or "")
    assert "not followed" in (found["keys"] or "")
    files = [p for p in resolved if p.endswith((".md", ".txt")) or p.endswith("keys")]
    assert sorted(Path(p).name for p in files) == ["alias.md", "keys", "passwd.txt"], resolved

    # A root that is a link into the watched folder is resolved once; one leading out of it
    # has each of its files resolved and refused.
    (tmp_path / "via").symlink_to(folder / "a", target_is_directory=True)
    resolved.clear()
    found = {f.path.name: f.problem for f in scan_folder(tmp_path / "via", roots=[folder])}
    assert found == {"mid.md": None, "deep.md": None, "alias.md": None}
    assert sorted(Path(p).name for p in resolved) == ["alias.md", "via"]
    resolved.clear()
    found = {f.path.name: f.problem for f in scan_folder(folder / "keys", roots=[folder])}
    assert list(found) == ["notes.md"] and "outside the watched folders" in (
        found["notes.md"] or ""
    )
    assert [Path(p).name for p in resolved] == ["keys", "notes.md"]
