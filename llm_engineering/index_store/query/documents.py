"""Reading indexed documents back: a slice of one document, and listings of them all.

``get_document`` serves the text a file was indexed from (stored with its chunks), so
its line numbers are the ones search hits cite: a Markdown, text or code file's own
lines; for HTML and DOCX the lines of the extracted text; a PDF page by page, lines
counted within each page. Every path a caller names goes through the one path rule
(``llm_engineering.paths``): nothing outside the watched folders is read.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypedDict
from urllib.parse import quote, unquote

from llm_engineering.errors import PathError, UserError
from llm_engineering.index_store.query.listing import DocumentPage, list_documents
from llm_engineering.index_store.query.slices import (
    DocumentSlice,
    fill,
    find_span,
    line_range,
    lines_of,
    page_range,
)
from llm_engineering.index_store.read.readers import CODE_LANGUAGES, document_units, read_document
from llm_engineering.index_store.read.scanning import is_supported, scan_file
from llm_engineering.index_store.store.ledger import FileRow, Ledger
from llm_engineering.paths import confine

__all__ = ["DocumentSlice", "Documents", "mime_type"]

_MARKDOWN_LIKE = {"md", "markdown", "mdx", "html", "htm", "xhtml", "docx"}


class _Head(TypedDict):
    path: str
    rel_path: str
    uri: str
    title: str
    file_type: str
    mime_type: str


_ROOTS = "the watched folders and the folders ingested"


class Documents:
    """Reads documents and listings from the ledger, confined to the folders it may read.

    Those are the watched folders and every folder an ingest was given (a file's folder, for
    a file), for as long as files indexed from it remain: ``llm-eng ingest DIR`` then
    ``llm-eng show DIR/page.md`` reads the page without DIR being watched. Nothing outside
    them is read, and links leading out of them are refused.

    Args:
        ledger: The index's files, chunks and stored document texts.
        folders: The watched folders.
    """

    def __init__(self, ledger: Ledger, folders: Sequence[Path]):
        self._ledger = ledger
        self._watched = [Path(os.path.realpath(f)) for f in folders]
        self._generation: int | None = None
        self._roots: list[Path] = []
        self._names: dict[Path, str] = {}

    def folders(self) -> list[Path]:
        """The watched folders, then the folders ingested, as the ledger has them now."""
        generation = self._ledger.generation()
        if generation != self._generation:  # a write since: roots may have come or gone
            ingested = [Path(root) for root in self._ledger.roots()]
            roots = list(dict.fromkeys([*self._watched, *ingested]))
            names: dict[Path, str] = {}
            for folder in roots:
                name, n = folder.name or "root", 1
                while name in names.values():
                    n += 1
                    name = f"{folder.name or 'root'}-{n}"
                names[folder] = name
            self._roots, self._names, self._generation = roots, names, generation
        return self._roots

    # -- URIs --------------------------------------------------------------------------

    def uri(self, path: str) -> str:
        """``doc://FOLDER/REL/PATH`` for a file inside a folder it may read (FOLDER: its base
        name, made unique with ``-2``, ``-3``)."""
        resolved = Path(path)
        self.folders()  # brings the names up to date
        for folder, name in self._names.items():
            if folder in resolved.parents:
                return f"doc://{quote(name)}/{quote(str(resolved.relative_to(folder)))}"
        return f"doc://{quote(resolved.name)}"

    def path_for_uri(self, folder: str, rel_path: str) -> Path:
        """The file a ``doc://`` URI names, confined to the watched folders.

        Raises:
            PathError: no watched folder has that name, or the path leaves it.
        """
        name = unquote(folder)
        self.folders()  # brings the names up to date
        for root, root_name in self._names.items():
            if root_name == name:
                return confine(unquote(rel_path), [root], relative_to=root, roots_name=_ROOTS)
        known = ", ".join(self._names.values()) or "none"
        raise PathError(f"no watched or ingested folder is called {name!r} (there are: {known})")

    def listing(
        self,
        *,
        path_prefix: str | None = None,
        file_types: Sequence[str] | None = None,
        status: Sequence[str] | None = None,
        modified_after: float | None = None,
        sort: str = "path",
        limit: int = 50,
        cursor: str | None = None,
        pending: Iterable[Path] = (),
        scan: bool = False,
    ) -> DocumentPage:
        """Indexed, pending and failed files: see :func:`~.listing.list_documents`."""
        return list_documents(
            self._ledger, self.folders(), self.uri, path_prefix=path_prefix,
            file_types=file_types, status=status, modified_after=modified_after, sort=sort,
            limit=limit, cursor=cursor, pending=pending, scan=scan,
        )  # fmt: skip

    # -- one document --------------------------------------------------------------------

    def read(
        self,
        *,
        path: str | None = None,
        chunk_id: str | None = None,
        start_line: int | None = None,
        end_line: int | None = None,
        page: int | None = None,
        pages: str | None = None,
        around: int | None = None,
        max_chars: int = 20_000,
    ) -> DocumentSlice:
        """A slice of an indexed document's text; see the module docstring for the numbering.

        Raises:
            UserError: contradictory arguments, an unknown chunk, a page or line out of range.
            PathError: the path lies outside the watched folders, does not exist, is not
                indexed (yet), or failed to index (the message gives the reason).
        """
        if (path is None) == (chunk_id is None):
            raise UserError("pass either path or chunk_id (a search hit's chunk_id)")
        if max_chars < 100:
            raise UserError("max_chars must be at least 100")
        chunk = None
        if chunk_id is not None:
            chunk = self._ledger.chunk(chunk_id)
            if chunk is None:
                raise UserError(
                    f"no chunk {chunk_id!r} in the index: its file was re-indexed or removed "
                    "since that search; search again for fresh chunk ids"
                )
            path = chunk.path
        assert path is not None
        row = self._indexed_row(path)
        units, unit_pages, notes = self._text(row)
        base = self._info_fields(row)
        if unit_pages is None:
            text = units[0]
            lines = lines_of(text)
            span = None
            if chunk is not None:
                span = (
                    (chunk.start_line, chunk.end_line or chunk.start_line)
                    if chunk.start_line is not None
                    else find_span(text, chunk.text)
                )
            first, last = line_range(start_line, end_line, around, span, len(lines))
            result = DocumentSlice(
                **base, text="", start_line=first, end_line=last, total_lines=len(lines),
                chunk_start_line=span[0] if span else None, chunk_end_line=span[1] if span else None,
                notes=notes,
            )  # fmt: skip
            fill(result, lines, first, last, max_chars)
            return result
        return self._get_pdf_pages(
            base, units, unit_pages, chunk, start_line, end_line, page, pages, around, max_chars,
            notes,
        )  # fmt: skip

    def _get_pdf_pages(
        self,
        base: _Head,
        units: list[str],
        unit_pages: list[int],
        chunk: object,
        start_line: int | None,
        end_line: int | None,
        page: int | None,
        pages: str | None,
        around: int | None,
        max_chars: int,
        notes: list[str],
    ) -> DocumentSlice:
        by_page = dict(zip(unit_pages, units, strict=True))
        total = max(unit_pages)
        span = None
        chunk_page = getattr(chunk, "page", None)
        if page is None and pages is None and chunk is not None:
            page = chunk_page or unit_pages[0]
            span = find_span(by_page.get(page, ""), getattr(chunk, "text", ""))
        first_page, last_page = page_range(page, pages, total)
        if first_page != last_page:
            if start_line or end_line or around:
                raise UserError("start_line, end_line and around need a single page (page=N)")
            parts: list[str] = []
            used, cut_at = 0, None
            for number in range(first_page, last_page + 1):
                part = f"--- page {number} ---\n{by_page.get(number, '')}"
                if parts and used + len(part) > max_chars:
                    cut_at = number
                    break
                parts.append(part)
                used += len(part) + 2
            result = DocumentSlice(
                **base, text="\n\n".join(parts), start_line=None, end_line=None, total_lines=None,
                page=first_page, end_page=(cut_at - 1) if cut_at else last_page, total_pages=total,
                chunk_page=chunk_page, notes=notes,
            )  # fmt: skip
            if cut_at is not None:
                result.truncated, result.next_page, result.next_start_line = True, cut_at, 1
            elif len(result.text) > max_chars:  # one page alone is over the limit
                lines = lines_of(by_page.get(first_page, ""))
                result.end_page = first_page
                result.start_line, result.total_lines = 1, len(lines)
                fill(result, lines, 1, len(lines), max_chars)
                result.next_page = first_page if result.truncated else first_page + 1
            return result
        text = by_page.get(first_page, "")
        if not text:
            notes.append(f"page {first_page} has no extractable text")
        lines = lines_of(text)
        first, last = line_range(start_line, end_line, around, span, len(lines))
        result = DocumentSlice(
            **base, text="", start_line=first, end_line=last, total_lines=len(lines),
            page=first_page, end_page=first_page, total_pages=total, chunk_page=chunk_page,
            chunk_start_line=span[0] if span else None, chunk_end_line=span[1] if span else None,
            notes=notes,
        )  # fmt: skip
        fill(result, lines, first, last, max_chars)
        if result.next_start_line is not None:
            result.next_page = first_page
        elif first_page < total and start_line is None and end_line is None and not around:
            result.next_page, result.next_start_line = first_page + 1, 1
        return result

    def _indexed_row(self, path: str) -> FileRow:
        folders = self.folders()
        if not folders:
            raise PathError(
                "nothing is indexed yet, so no document can be read: index a folder with "
                "`llm-eng ingest FOLDER` (or start the server with --watch FOLDER)"
            )
        try:
            resolved = confine(path, folders, relative_to=folders[0], roots_name=_ROOTS)
        except PathError:
            # A failed entry's path as listed (a name that is not UTF-8, shown escaped, names
            # no file): its reason says more than "does not exist". Nothing is read.
            listed = self._ledger.file(str(folders[0] / Path(path).expanduser()))
            if listed is not None and listed.status == "failed":
                raise PathError(f"{listed.path} could not be indexed: {listed.error}") from None
            raise
        row = self._ledger.file(str(resolved))
        if row is None:
            why = (
                "its type is not one that is indexed"
                if not is_supported(resolved)
                else "it is new and waits to be indexed (index_status shows pending files)"
            )
            raise PathError(f"{resolved} is not indexed: {why}")
        if row.status == "failed":
            raise PathError(f"{resolved} could not be indexed: {row.error}")
        return row

    def _text(self, row: FileRow) -> tuple[list[str], list[int] | None, list[str]]:
        notes: list[str] = []
        stored = self._ledger.document_text(row.path)
        scanned = scan_file(Path(row.path), self.folders())
        changed = scanned.size != row.size or scanned.mtime_ns != row.mtime_ns
        if stored is not None:
            if changed:
                notes.append(
                    "the file changed on disk after it was indexed; this is the indexed text"
                )
            return stored[0], stored[1], notes
        # Indexed by a version that did not keep the text: read the file again.
        from llm_engineering.hashing import sha256_bytes

        data = Path(row.path).read_bytes()
        if sha256_bytes(data) != row.sha256:
            notes.append("the file changed on disk after it was indexed; this is its current text")
        units, unit_pages = document_units(read_document(Path(row.path), data))
        return units, unit_pages, notes

    def _info_fields(self, row: FileRow) -> _Head:
        return {
            "path": row.path,
            "rel_path": row.rel_path,
            "uri": self.uri(row.path),
            "title": row.title or Path(row.path).name,
            "file_type": row.file_type,
            "mime_type": mime_type(row.file_type),
        }


def mime_type(file_type: str) -> str:
    """What the extracted text is: Markdown-style for structured formats, else by extension."""
    if file_type in _MARKDOWN_LIKE:
        return "text/markdown"
    if file_type == "rst":
        return "text/x-rst"
    if file_type in CODE_LANGUAGES:
        return mimetypes.guess_type(f"x.{file_type}")[0] or "text/plain"
    return "text/plain"
