"""Hostile files that the second round found handled, kept so they stay handled: special files,
link loops, entity expansion and external entities in DOCX and HTML, encrypted and image-only PDFs."""

from __future__ import annotations

import os
import socket
import stat
import zipfile
from pathlib import Path

from tests.conftest import write_docx, write_pdf


def with_document_xml(source: Path, target: Path, document_xml: bytes) -> None:
    """A copy of the DOCX ``source`` whose ``word/document.xml`` is ``document_xml``."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item.filename)
            new.writestr(item, document_xml if item.filename == "word/document.xml" else data)


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def paragraph_document(doctype: str, text: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}\n<w:document {W}><w:body><w:p><w:r>'
        f"<w:t>{text}</w:t></w:r></w:p></w:body></w:document>"
    ).encode()


def test_fifos_sockets_devices_and_link_loops_are_failed_without_being_opened(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThe orchard ledger counts quinces.\n")
    os.mkfifo(folder / "pipe.md")  # opening it for reading would block forever
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "socket.txt"))
        os.mknod(folder / "device.txt", 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null
        (folder / "loop.md").symlink_to(folder / "loop.md")
        (folder / "a.md").symlink_to(folder / "b.md")
        (folder / "b.md").symlink_to(folder / "a.md")
        service = service_factory(watch=[folder])
        report = service.ingest([folder])
    failed = {Path(f.path).name: f.error for f in report.failed}
    assert set(failed) == {"pipe.md", "socket.txt", "device.txt", "loop.md", "a.md", "b.md"}
    for name in ("pipe.md", "socket.txt", "device.txt"):
        assert failed[name] == "not a regular file", failed
    for name in ("loop.md", "a.md", "b.md"):
        assert "symbolic link" in failed[name], failed
    assert report.added == 1
    assert service.search("orchard ledger quinces", mode="keyword")[0][0].path.endswith("good.md")


def test_entity_bombs_and_external_entities_in_docx_and_html_expand_nothing(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.txt"
    secret.write_text("the vault code is 4417")
    folder = tmp_path / "docs"
    folder.mkdir()
    plain = tmp_path / "plain.docx"
    write_docx(plain, "Minutes", ["placeholder"])
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">' for i in range(10))
    with_document_xml(
        plain,
        folder / "laughs.docx",
        paragraph_document(f"<!DOCTYPE w:document [{laughs}]>", "Billion &l9; harbour"),
    )
    with_document_xml(
        plain,
        folder / "xxe.docx",
        paragraph_document(
            f'<!DOCTYPE w:document [<!ENTITY x SYSTEM "file://{secret}">]>', "External &x; pier"
        ),
    )
    (folder / "laughs.html").write_text(
        f"<!DOCTYPE html [{laughs}]><html><body><p>Billion &l9; lantern</p></body></html>"
    )
    (folder / "xxe.html").write_text(
        f'<!DOCTYPE html [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<html><body><p>External &x; beacon</p></body></html>"
    )
    service = service_factory(watch=[folder])
    report = service.ingest([folder])
    stored = service.storage.db.execute("SELECT path, text FROM chunks").fetchall()
    assert report.added + len(report.failed) == 4
    for path, text in stored:
        assert "4417" not in text and "lollol" not in text, (path, text[:200])
    for failure in report.failed:
        assert "4417" not in failure.error, failure
    failed = {Path(f.path).name: f.error for f in report.failed}
    assert "entity amplification" in failed["laughs.docx"], failed


def test_encrypted_and_image_only_pdfs_are_failed_with_the_reason(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from pypdf import PdfReader, PdfWriter

    folder = tmp_path / "docs"
    folder.mkdir()
    write_pdf(tmp_path / "plain.pdf", ["The sealed archive lists the tide tables."])
    locked = PdfWriter(clone_from=PdfReader(tmp_path / "plain.pdf"))
    locked.encrypt(user_password="pw", owner_password="owner", algorithm="RC4-128")
    locked.write(folder / "locked.pdf")
    blank = PdfWriter()
    blank.add_blank_page(200, 200)
    blank.write(folder / "scan.pdf")
    report = service_factory(watch=[folder]).ingest([folder])
    failed = {Path(f.path).name: f.error for f in report.failed}
    assert failed == {
        "locked.pdf": "PDF is encrypted with a password",
        "scan.pdf": "PDF has no extractable text in 1 page(s) (scanned images?)",
    }
