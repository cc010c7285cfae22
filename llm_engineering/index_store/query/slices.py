"""A slice of a document's text: which lines or pages a request asks for, and the result.

Lines are 1-based and inclusive; for a PDF they count within a page. A slice stops at
``max_chars`` and says where to continue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_engineering.errors import UserError

__all__ = ["DocumentSlice", "fill", "find_span", "line_range", "lines_of", "page_range"]


@dataclass
class DocumentSlice:
    path: str
    rel_path: str
    uri: str
    title: str
    file_type: str
    mime_type: str
    text: str
    start_line: int | None
    """First line returned (within ``page`` for a PDF)."""
    end_line: int | None
    total_lines: int | None
    """Lines in the document (in ``page`` for a PDF)."""
    page: int | None = None
    end_page: int | None = None
    total_pages: int | None = None
    truncated: bool = False
    next_start_line: int | None = None
    """Where to continue (with ``next_page`` for a PDF); None when nothing is left."""
    next_page: int | None = None
    chunk_start_line: int | None = None
    """Where the asked-for chunk lies (lines, in its page for a PDF), when it was found."""
    chunk_end_line: int | None = None
    chunk_page: int | None = None
    notes: list[str] = field(default_factory=list)


def lines_of(text: str) -> list[str]:
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


def find_span(text: str, chunk_text: str) -> tuple[int, int] | None:
    found = text.find(chunk_text.strip()) if chunk_text.strip() else -1
    if found < 0:
        return None
    first = text.count("\n", 0, found) + 1
    return first, first + chunk_text.strip().count("\n")


def line_range(
    start: int | None,
    end: int | None,
    around: int | None,
    span: tuple[int, int] | None,
    total: int,
) -> tuple[int, int]:
    if around is not None and around < 0:
        raise UserError("around must be 0 or more")
    if start is not None or end is not None:
        first, last = start or 1, end or total
    elif span is not None:
        wing = 10 if around is None else around
        first, last = span[0] - wing, span[1] + wing
    else:
        first, last = 1, total
    if start is not None and start > max(total, 1):
        raise UserError(f"start_line {start} is past the end: the text has {total} lines")
    if (start is not None or end is not None) and (first < 1 or last < first):
        raise UserError(f"bad line range {start}-{end}: lines are 1-based and start <= end")
    return max(first, 1), min(last, max(total, 1))


def fill(result: DocumentSlice, lines: list[str], first: int, last: int, max_chars: int) -> None:
    """Put lines first..last into ``result.text``, stopping before ``max_chars``."""
    taken: list[str] = []
    used = 0
    line = first
    while line <= last and line <= len(lines):
        text = lines[line - 1]
        if used + len(text) + 1 > max_chars:
            if not taken:  # one line longer than the limit: cut it, move on past it
                taken.append(text[: max_chars - 1])
                result.notes.append(f"line {line} was cut at max_chars ({max_chars})")
                line += 1
            break
        taken.append(text)
        used += len(text) + 1
        line += 1
    result.text = "\n".join(taken)
    result.end_line = line - 1 if taken else first
    if line <= last and line <= len(lines):
        result.truncated = True
        result.next_start_line = line
    elif last < len(lines):
        result.next_start_line = last + 1


def page_range(page: int | None, pages: str | None, total: int) -> tuple[int, int]:
    if page is not None and pages is not None:
        raise UserError("pass page or pages, not both")
    if pages is not None:
        first_text, _, last_text = pages.partition("-")
        try:
            first = int(first_text)
            last = int(last_text) if last_text else first
        except ValueError:
            raise UserError(f"pages must be N or N-M, got {pages!r}") from None
    else:
        first = last = page or 1
    if first < 1 or last < first or first > total:
        raise UserError(f"no page {first}-{last}: the PDF has {total} pages with text")
    return first, min(last, total)
