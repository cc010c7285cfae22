"""Readers: one file in, a title and a list of text sections out, chosen by extension.

Every section remembers where it came from (a PDF page, or the first source line of
the text) so chunks can cite ``page`` or ``start_line``/``end_line``. Structured
formats (HTML, DOCX, reStructuredText) are turned into Markdown-style headings so the
chunker can split them by section like Markdown.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_engineering.errors import DocumentError
from llm_engineering.index_store.read.archives import ZIP_TYPES, check_unpacked_size
from llm_engineering.index_store.read.code_chunks import module_name
from llm_engineering.index_store.read.html_text import html_to_text
from llm_engineering.index_store.read.text_decoding import decode_text

__all__ = [
    "CODE_LANGUAGES",
    "SUPPORTED_EXTENSIONS",
    "ParsedDocument",
    "ReadLimits",
    "Section",
    "atx_heading",
    "document_units",
    "file_type_of",
    "read_document",
]

MARKDOWN_EXTENSIONS = {"md", "markdown", "mdx"}
TEXT_EXTENSIONS = {"txt", "text"}
RST_EXTENSIONS = {"rst"}
HTML_EXTENSIONS = {"html", "htm", "xhtml"}
# extension -> language name (tree-sitter grammar when one is installed, else line windows)
CODE_LANGUAGES: dict[str, str] = {
    "py": "python", "pyi": "python",
    "js": "javascript", "mjs": "javascript", "cjs": "javascript", "jsx": "javascript",
    "ts": "typescript", "mts": "typescript", "cts": "typescript", "tsx": "tsx",
    "go": "go", "rs": "rust", "java": "java",
    "c": "c", "h": "c",
    "cpp": "cpp", "cc": "cpp", "cxx": "cpp", "hpp": "cpp", "hh": "cpp", "hxx": "cpp",
    "cs": "c_sharp", "rb": "ruby", "php": "php", "kt": "kotlin", "swift": "swift",
    "scala": "scala", "lua": "lua", "sh": "bash", "bash": "bash", "sql": "sql",
    "r": "r", "jl": "julia", "toml": "toml", "yaml": "yaml", "yml": "yaml",
    "json": "json", "ini": "ini", "cfg": "ini",
}  # fmt: skip
SUPPORTED_EXTENSIONS = frozenset(
    MARKDOWN_EXTENSIONS | TEXT_EXTENSIONS | RST_EXTENSIONS | HTML_EXTENSIONS
    | {"pdf", "docx"} | set(CODE_LANGUAGES)
)  # fmt: skip


@dataclass(frozen=True)
class ReadLimits:
    """How much work a file may ask of its reader; each limit is named by its setting."""

    max_unpacked_bytes: int = 250 * 1048576
    """How large a zip-based document (.docx) may unpack to (``max_unpacked_mb``)."""
    max_html_depth: int = 1024
    max_html_elements: int = 200_000
    max_pdf_pages: int = 2000

    @classmethod
    def of(cls, settings: Any) -> ReadLimits:
        """The limits a :class:`~llm_engineering.config.Settings` sets."""
        return cls(
            settings.max_unpacked_bytes,
            settings.max_html_depth,
            settings.max_html_elements,
            settings.max_pdf_pages,
        )


@dataclass
class Section:
    """A run of text from one place in the source."""

    text: str
    page: int | None = None
    """1-based PDF page the text is on."""
    first_line: int | None = None
    """1-based line where ``text`` starts, in the text ``get_document`` serves: the file's own
    lines, the extracted text of HTML and DOCX, or (a PDF) the page's lines; None: no lines."""


@dataclass
class ParsedDocument:
    path: Path
    file_type: str
    """Lower-case extension without the dot: ``md``, ``pdf``, ``py``."""
    kind: str
    """``markdown``, ``text``, ``code``, ``pdf``, ``html`` or ``docx``: picks the chunker."""
    title: str
    sections: list[Section] = field(default_factory=list)
    language: str | None = None
    text: str | None = None
    """The whole document as ``get_document`` serves it, its lines numbered as the chunks'
    ``start_line`` count them: a text file's own lines (Markdown front matter, reST as
    written), the extracted text of HTML and DOCX; None for a PDF, whose sections are pages."""
    module: str | None = None
    """Source code: its dotted module name (``flask.app``), the head of every chunk's heading."""


def document_units(doc: ParsedDocument) -> tuple[list[str], list[int] | None]:
    """(units, pages): a PDF's page texts and their page numbers, else the one whole text."""
    if doc.text is None:
        return [s.text for s in doc.sections], [s.page or i + 1 for i, s in enumerate(doc.sections)]
    return [doc.text], None


def file_type_of(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def read_document(path: Path, data: bytes, limits: ReadLimits | None = None) -> ParsedDocument:
    """Parse ``data`` (the bytes of ``path``) by the file's extension.

    Args:
        limits: How deep or large an HTML page, how many PDF pages and how large an
            unpacked .docx (read from its zip directory before anything is extracted)
            may be; the defaults when None.

    Raises:
        DocumentError: the bytes are not a readable document of that type, hold no text,
            or pass one of ``limits`` (the message names its setting).
    """
    limits = limits or ReadLimits()
    file_type = file_type_of(path)
    reader = _READERS.get(file_type)
    if reader is None:
        if file_type in CODE_LANGUAGES:
            reader = _read_code
        else:
            raise DocumentError(f"unsupported file type '.{file_type}'")
    if not data:
        raise DocumentError("file is empty")
    if file_type in ZIP_TYPES:
        check_unpacked_size(data, limits.max_unpacked_bytes)
    doc = reader(path, data, limits)
    if not any(section.text.strip() for section in doc.sections):
        raise DocumentError("no text content")
    return doc


# --- Markdown and plain text ------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*\n", re.DOTALL)
# Front matter is looked for in this much of the text only, never a whole large file.
_FRONT_MATTER_CHARS = 1 << 20
_FENCE = re.compile(r"^\s*(```|~~~)")


def atx_heading(line: str) -> str | None:
    """The text of an ATX heading line (``## Title ##``), unstripped, else None.

    What ``^(#{1,6})[ \\t]+(.+?)[ \\t#]*$`` would capture, in linear time: that regular
    expression backtracks quadratically on a long line of ``# # # ... x``.
    """
    hashes = len(line) - len(line.lstrip("#"))
    if not 1 <= hashes <= 6 or line[hashes : hashes + 1] not in (" ", "\t"):
        return None
    rest = line[hashes:]
    body = rest.lstrip(" \t")
    if not body:  # only blanks: the regex takes the last one as the text
        return rest[-1] if len(rest) >= 2 else None
    return body[: max(1, len(body.rstrip(" \t#")))]


def _markdown_title(text: str) -> str | None:
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            heading = atx_heading(line)
            if heading is not None:
                return heading.strip()
    return None


def _read_markdown(path: Path, data: bytes, limits: ReadLimits) -> ParsedDocument:
    text = whole = decode_text(data)
    first_line = 1
    title = None
    front = _FRONT_MATTER.match(text[:_FRONT_MATTER_CHARS])
    if front:
        for line in front.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip():
                title = value.strip().strip("'\"")
        first_line += text[: front.end()].count("\n")
        text = text[front.end() :]
    title = title or _markdown_title(text) or path.stem
    return ParsedDocument(
        path, file_type_of(path), "markdown", title, [Section(text, first_line=first_line)],
        text=whole,
    )  # fmt: skip


def _read_text(path: Path, data: bytes, limits: ReadLimits) -> ParsedDocument:
    text = decode_text(data)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    title = first[:120] if 0 < len(first) <= 120 else path.stem
    return ParsedDocument(
        path, file_type_of(path), "text", title, [Section(text, first_line=1)], text=text
    )


_RST_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+_.:])\1{2,}\s*$")


def rst_to_markdown(text: str) -> str:
    """Turn reStructuredText section titles into ATX headings, keeping the line count."""
    lines = text.split("\n")
    levels: list[str] = []
    out = list(lines)
    i = 0
    while i < len(lines) - 1:
        title, under = lines[i], lines[i + 1]
        match = _RST_ADORNMENT.match(under)
        if (
            title.strip()
            and not _RST_ADORNMENT.match(title)
            and match
            and len(under.rstrip()) >= len(title.rstrip())
        ):
            char = match.group(1)
            if char not in levels:
                levels.append(char)
            depth = min(levels.index(char) + 1, 6)
            # An overline of the same character belongs to this title.
            if i > 0 and lines[i - 1].strip() and _RST_ADORNMENT.match(lines[i - 1]):
                out[i - 1] = ""
            out[i] = "#" * depth + " " + title.strip()
            out[i + 1] = ""
            i += 2
            continue
        i += 1
    return "\n".join(out)


def _read_rst(path: Path, data: bytes, limits: ReadLimits) -> ParsedDocument:
    source = decode_text(data)
    text = rst_to_markdown(source)  # headings the Markdown chunker knows; the same lines
    title = _markdown_title(text) or path.stem
    return ParsedDocument(
        path, file_type_of(path), "markdown", title, [Section(text, first_line=1)], text=source
    )


def _read_code(path: Path, data: bytes, limits: ReadLimits) -> ParsedDocument:
    text = decode_text(data)
    language = CODE_LANGUAGES.get(file_type_of(path))
    return ParsedDocument(
        path, file_type_of(path), "code", path.name, [Section(text, first_line=1)], language,
        text, module_name(path, language),
    )  # fmt: skip


# --- HTML ----------------------------------------------------------------------------


def _read_html(path: Path, data: bytes, limits: ReadLimits) -> ParsedDocument:
    title, text = html_to_text(decode_text(data), limits.max_html_depth, limits.max_html_elements)
    return ParsedDocument(
        path, file_type_of(path), "html", title or path.stem, [Section(text, first_line=1)],
        text=text,
    )  # fmt: skip


# --- PDF -----------------------------------------------------------------------------


def _read_pdf(path: Path, data: bytes, limits: ReadLimits) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("PDF is encrypted with a password")
        if len(reader.pages) > limits.max_pdf_pages:
            raise DocumentError(
                f"PDF has {len(reader.pages):,} pages, past the {limits.max_pdf_pages:,} page "
                "limit (max_pdf_pages); skipped"
            )
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            if text.strip():
                sections.append(Section(text, page=number, first_line=1))
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except DocumentError:
        raise
    except (
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
    ) as exc:
        raise DocumentError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if not sections:
        raise DocumentError(
            f"PDF has no extractable text in {len(reader.pages)} page(s) (scanned images?)"
        )
    first_line = next((ln.strip() for ln in sections[0].text.splitlines() if ln.strip()), "")
    title = meta_title.strip() or (first_line if len(first_line) <= 120 else "") or path.stem
    return ParsedDocument(path, "pdf", "pdf", title, sections)


# --- DOCX ----------------------------------------------------------------------------


def _read_docx(path: Path, data: bytes, limits: ReadLimits) -> ParsedDocument:
    import zipfile

    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentError(f"not a readable DOCX file ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # python-docx raises its own PackageNotFoundError and lxml errors
        raise DocumentError(f"not a readable DOCX file ({type(exc).__name__}: {exc})") from exc

    lines: list[str] = []
    title = (document.core_properties.title or "").strip()
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(child, document)
            text = paragraph.text.strip()
            if not text:
                continue
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            if style == "Title":
                lines.append(f"# {text}")
                title = title or text
            elif style.startswith("Heading"):
                digits = "".join(ch for ch in style if ch.isdigit())
                level = min(int(digits), 6) if digits else 1
                lines.append(f"{'#' * level} {text}")
                title = title or text
            elif "List" in style:
                lines.append(f"- {text}")
            else:
                lines.append(text)
        elif tag == "tbl":
            table = Table(child, document)
            for row in table.rows:
                cells = [cell.text.strip() for cell in row.cells]
                if any(cells):
                    lines.append(" | ".join(cells))
    text = "\n\n".join(lines)
    return ParsedDocument(
        path, "docx", "docx", title or path.stem, [Section(text, first_line=1)], text=text
    )


_READERS: dict[str, Callable[[Path, bytes, ReadLimits], ParsedDocument]] = {
    **{ext: _read_markdown for ext in MARKDOWN_EXTENSIONS},
    **{ext: _read_text for ext in TEXT_EXTENSIONS},
    **{ext: _read_rst for ext in RST_EXTENSIONS},
    **{ext: _read_html for ext in HTML_EXTENSIONS},
    "pdf": _read_pdf,
    "docx": _read_docx,
}
