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

from llm_engineering.errors import DocumentError
from llm_engineering.index_store.archives import ZIP_TYPES, check_unpacked_size
from llm_engineering.index_store.text_decoding import decode_text

__all__ = [
    "CODE_LANGUAGES",
    "SUPPORTED_EXTENSIONS",
    "ParsedDocument",
    "Section",
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


@dataclass
class Section:
    """A run of text from one place in the source."""

    text: str
    page: int | None = None
    """1-based PDF page the text is on."""
    first_line: int | None = None
    """1-based source line where ``text`` starts; None when lines mean nothing (PDF, DOCX, HTML)."""


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
    """The whole document as text, its lines numbered as the chunks' ``start_line`` count
    them (Markdown front matter included); None for a PDF, whose sections are its pages."""


def document_units(doc: ParsedDocument) -> tuple[list[str], list[int] | None]:
    """(units, pages): a PDF's page texts and their page numbers, else the one whole text."""
    if doc.text is None:
        return [s.text for s in doc.sections], [s.page or i + 1 for i, s in enumerate(doc.sections)]
    return [doc.text], None


def file_type_of(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def read_document(
    path: Path, data: bytes, *, max_unpacked_bytes: int = 250 * 1048576
) -> ParsedDocument:
    """Parse ``data`` (the bytes of ``path``) by the file's extension.

    Args:
        max_unpacked_bytes: How large a zip-based document (.docx) may unpack to, checked
            from its directory before anything is extracted (``max_unpacked_mb``).

    Raises:
        DocumentError: the bytes are not a readable document of that type, hold no text,
            or (a .docx) unpack past ``max_unpacked_bytes``.
    """
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
        check_unpacked_size(data, max_unpacked_bytes)
    doc = reader(path, data)
    if not any(section.text.strip() for section in doc.sections):
        raise DocumentError("no text content")
    return doc


# --- Markdown and plain text ------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)---[ \t]*\n", re.DOTALL)
_ATX_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _markdown_title(text: str) -> str | None:
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence:
            match = _ATX_HEADING.match(line)
            if match:
                return match.group(2).strip()
    return None


def _read_markdown(path: Path, data: bytes) -> ParsedDocument:
    text = whole = decode_text(data)
    first_line = 1
    title = None
    front = _FRONT_MATTER.match(text)
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


def _read_text(path: Path, data: bytes) -> ParsedDocument:
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


def _read_rst(path: Path, data: bytes) -> ParsedDocument:
    text = rst_to_markdown(decode_text(data))
    title = _markdown_title(text) or path.stem
    return ParsedDocument(
        path, file_type_of(path), "markdown", title, [Section(text, first_line=1)], text=text
    )


def _read_code(path: Path, data: bytes) -> ParsedDocument:
    text = decode_text(data)
    language = CODE_LANGUAGES.get(file_type_of(path))
    return ParsedDocument(
        path, file_type_of(path), "code", path.name, [Section(text, first_line=1)], language, text
    )


# --- HTML ----------------------------------------------------------------------------

_HTML_DROP = ("script", "style", "noscript", "template", "svg", "head", "iframe", "object")
_HTML_BLOCKS = (
    "p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "li", "ul",
    "ol", "table", "tr", "blockquote", "figure", "figcaption", "dl", "dt", "dd", "form", "br", "hr",
)  # fmt: skip


def _read_html(path: Path, data: bytes) -> ParsedDocument:
    import warnings

    from bs4 import BeautifulSoup, NavigableString, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(decode_text(data), "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    for level in range(1, 7):
        for tag in soup.find_all(f"h{level}"):
            heading = tag.get_text(" ", strip=True)
            tag.replace_with(NavigableString(f"\n\n{'#' * level} {heading}\n\n"))
            title = title or heading
    for tag in soup.find_all("pre"):
        tag.replace_with(NavigableString(f"\n\n```\n{tag.get_text()}\n```\n\n"))
    for tag in soup.find_all(["td", "th"]):
        tag.insert_after(NavigableString(" | "))
    for tag in soup.find_all(_HTML_BLOCKS):
        tag.insert_before(NavigableString("\n"))
        tag.insert_after(NavigableString("\n"))
    for tag in soup.find_all("li"):
        tag.insert(0, NavigableString("- "))
    text = soup.get_text()
    text = re.sub(r"[ \t\r\f\v]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return ParsedDocument(
        path, file_type_of(path), "html", title or path.stem, [Section(text)], text=text
    )


# --- PDF -----------------------------------------------------------------------------


def _read_pdf(path: Path, data: bytes) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError("PDF is encrypted with a password")
        sections = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            if text.strip():
                sections.append(Section(text, page=number))
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


def _read_docx(path: Path, data: bytes) -> ParsedDocument:
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
    return ParsedDocument(path, "docx", "docx", title or path.stem, [Section(text)], text=text)


_READERS: dict[str, Callable[[Path, bytes], ParsedDocument]] = {
    **{ext: _read_markdown for ext in MARKDOWN_EXTENSIONS},
    **{ext: _read_text for ext in TEXT_EXTENSIONS},
    **{ext: _read_rst for ext in RST_EXTENSIONS},
    **{ext: _read_html for ext in HTML_EXTENSIONS},
    "pdf": _read_pdf,
    "docx": _read_docx,
}
