"""Chunking that follows a document's structure, sized in embedding-model tokens.

Markdown-like text (Markdown, reST, HTML, DOCX) is split at headings first
(LlamaIndex ``MarkdownNodeParser``, which leaves headings inside code fences alone),
then each section by sentences. Source code is cut into whole definitions named by their
place (:mod:`.code_chunks`, tree-sitter) when the grammar is installed, and into line
windows otherwise. Each chunk keeps its heading path, PDF page, or line range.

Prose is packed from one tokenization with offsets (:mod:`.streaming`): sentences (found
by a regex that cannot backtrack far) go into a chunk while its tokens fit, and the next
chunk repeats the last whole sentences that fit the overlap. A text longer than
``STREAM_CHARS`` is first cut into blocks at paragraph, line or sentence ends, so no
tokenizer or regular expression sees a whole multi-megabyte text, and line numbers are
counted onwards, never from the start again. LlamaIndex's ``SentenceSplitter`` remains for
a tokenizer without offsets (sizes in words, when the model's tokenizer is not on this
machine).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm_engineering.index_store.read.code_chunks import code_pieces, load_parser
from llm_engineering.index_store.read.readers import ParsedDocument, Section
from llm_engineering.index_store.read.streaming import (
    STREAM_CHARS,
    LineCounter,
    pack_block,
    stream_blocks,
)

__all__ = ["CHUNKING", "Chunk", "Chunker", "embedding_text", "line_span"]

CHUNKING = "4"
"""How files are cut, as the index records it: a new value makes every file be read again.
2: source code by whole definitions (:mod:`.code_chunks`). 3: HTML, DOCX and PDF chunks
carry lines (of the extracted text, of a PDF's page), HTML without its permalink marks.
4: prose packed from one tokenization with offsets (:func:`.streaming.pack_block`), as large
texts were: 1.8x faster than LlamaIndex's sentence splitter, which tokenized each piece at
every level of splitting and ran nltk's sentence regex (SciFact nDCG@10 +0.0002 to +0.0004)."""

log = logging.getLogger(__name__)


@dataclass
class Chunk:
    text: str
    ordinal: int
    heading: str = ""
    """Heading path (``Guide › Install › Linux``) or the title when there are no headings."""
    page: int | None = None
    start_line: int | None = None
    end_line: int | None = None

    def embedding_text(self) -> str:
        return embedding_text(self.text, self.heading)


def embedding_text(text: str, heading: str) -> str:
    """The text to embed: the chunk, led by its heading path when it does not start with one."""
    if not heading or text.lstrip().startswith("#"):
        return text
    return f"{heading}\n{text}"


def line_span(source: str, start: int, text: str, first_line: int) -> tuple[int, int]:
    """1-based (start_line, end_line) of ``text`` found at offset ``start`` of ``source``."""
    start_line = first_line + source.count("\n", 0, start)
    return start_line, start_line + text.rstrip("\n").count("\n")


class Chunker:
    """Splits parsed documents into chunks. Build once; safe to share between threads.

    Args:
        chunk_size: Maximum chunk size in tokens of ``tokenizer``.
        chunk_overlap: Tokens repeated between consecutive chunks of one section.
        tokenizer: ``str -> list`` of tokens (the embedding model's tokenizer).
    """

    def __init__(self, chunk_size: int, chunk_overlap: int, tokenizer: Callable[[str], list[Any]]):
        from llama_index.core.node_parser import MarkdownNodeParser

        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._tokenizer = tokenizer
        # Token offsets (``spans``) let a large text be packed in one pass; a tokenizer
        # without them streams its blocks through the sentence splitter.
        self._spans: Callable[[str], list[tuple[int, int]]] | None = getattr(
            tokenizer, "spans", None
        )
        self._sentences: Any = None
        """LlamaIndex's sentence splitter, made when a tokenizer without offsets needs it
        (it loads nltk: a second of a parse worker's start)."""
        self._markdown = MarkdownNodeParser()
        self._parsers: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load what the first split loads (nltk's sentence model, the Markdown parser)."""
        from llama_index.core import Document

        if self._spans is None:
            self._splitter().split_text("One. Two. " * self.chunk_size)
        self._markdown.get_nodes_from_documents([Document(text="# A\n\nB.\n")])

    def chunk(self, doc: ParsedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in doc.sections:
            lines = LineCounter(section.text, section.first_line or 1)
            if doc.kind in ("markdown", "html", "docx"):
                chunks.extend(self._chunk_markdown(section, doc.title, lines))
            elif doc.kind == "code":
                chunks.extend(self._chunk_code(section, doc))
            else:  # text, pdf
                chunks.extend(self._chunk_prose(section, section.text, 0, doc.title, lines))
        for ordinal, chunk in enumerate(chunks):
            chunk.ordinal = ordinal
        return chunks

    # -- prose -------------------------------------------------------------------------

    def _splitter(self) -> Any:
        with self._lock:
            if self._sentences is None:
                from llama_index.core.node_parser import SentenceSplitter

                self._sentences = SentenceSplitter(
                    chunk_size=self.chunk_size,
                    chunk_overlap=self.chunk_overlap,
                    tokenizer=self._tokenizer,
                )
            return self._sentences

    def _chunk_prose(
        self, section: Section, text: str, offset: int, heading: str, lines: LineCounter
    ) -> list[Chunk]:
        """Sentence-split ``text`` (found at ``offset`` of ``section.text``)."""
        if not text or text.isspace():
            return []
        if self._spans is not None or len(text) > STREAM_CHARS:
            return self._stream_prose(section, text, offset, heading, lines)
        # Without token offsets (a tokenizer that only counts): LlamaIndex's sentence splitter.
        # The splitter returns a text that fits as one stripped piece: no need to count it first.
        pieces = self._splitter().split_text(text)
        chunks = []
        cursor = 0
        for piece in pieces:
            found = text.find(piece, cursor)
            if found == -1:  # the splitter normalised whitespace; keep the last known place
                found = cursor
            else:
                cursor = found + 1
            start_line = end_line = None
            if section.first_line is not None:
                start_line, end_line = lines.span(offset + found, piece)
            chunks.append(Chunk(piece, 0, heading, section.page, start_line, end_line))
        return chunks

    def _stream_prose(
        self, section: Section, text: str, offset: int, heading: str, lines: LineCounter
    ) -> list[Chunk]:
        chunks: list[Chunk] = []
        for start, block in stream_blocks(text):
            if self._spans is None:
                chunks.extend(self._chunk_prose(section, block, offset + start, heading, lines))
                continue
            spans = self._spans(block)
            for at, piece in pack_block(block, spans, self.chunk_size, self.chunk_overlap):
                start_line = end_line = None
                if section.first_line is not None:
                    start_line, end_line = lines.span(offset + start + at, piece)
                chunks.append(Chunk(piece, 0, heading, section.page, start_line, end_line))
        return chunks

    # -- markdown ------------------------------------------------------------------------

    def _chunk_markdown(self, section: Section, title: str, lines: LineCounter) -> list[Chunk]:
        from llama_index.core import Document

        text = section.text
        nodes = self._markdown.get_nodes_from_documents([Document(text=text)])
        chunks: list[Chunk] = []
        cursor = 0
        folded: int | None = None
        """Where heading-only sections waiting for the section they head begin."""
        for i, node in enumerate(nodes):
            body = node.get_content()
            found = getattr(node, "start_char_idx", None)
            start = max(found if found is not None else text.find(body, cursor), 0)
            cursor = start + len(body)
            if _only_headings(body) and i + 1 < len(nodes):
                # A heading with no text of its own ("# Sourdough" then "## Oven") is not a
                # chunk: alone it matches a query by its words and outranks the section
                # that answers it. It leads the next section's text instead.
                folded = start if folded is None else folded
                continue
            heading = _heading_path(title, node.metadata.get("header_path", "/"), body)
            if folded is not None:
                body, start, folded = text[folded:cursor], folded, None
            chunks.extend(self._chunk_prose(section, body, start, heading, lines))
        return chunks

    # -- code ----------------------------------------------------------------------------

    def _parser(self, language: str | None) -> Any:
        """A tree-sitter parser for ``language`` (None without its grammar), made once."""
        with self._lock:
            if language not in self._parsers:
                self._parsers[language] = load_parser(language)
                if self._parsers[language] is None:
                    log.info("no tree-sitter grammar for %s; splitting by lines", language)
            return self._parsers[language]

    def _chunk_code(self, section: Section, doc: ParsedDocument) -> list[Chunk]:
        """Whole definitions, named by their place (:mod:`.code_chunks`); line windows when the
        language has no grammar here or its parser fails on this file."""
        module = doc.module or doc.title
        parser = self._parser(doc.language)
        if parser is None:
            return self._line_windows(section, module)
        try:
            pieces = code_pieces(
                section.text, parser, module, self.chunk_size, lambda t: len(self._tokenizer(t))
            )
        except Exception as exc:  # a grammar that cannot parse this file: fall back to lines
            log.info("tree-sitter could not split %s (%s); splitting by lines", doc.path, exc)
            return self._line_windows(section, module)
        lines = section.text.split("\n")
        first = section.first_line or 1
        chunks = []
        for piece in pieces:
            text = "\n".join(lines[piece.start : piece.end + 1])
            start, end = first + piece.start, first + piece.end
            chunks.append(Chunk(text, 0, piece.heading, None, start, end))
        return chunks

    def _line_windows(self, section: Section, title: str) -> list[Chunk]:
        """Consecutive whole lines up to chunk_size tokens, overlapping by chunk_overlap."""
        lines = section.text.split("\n")
        sizes = [len(self._tokenizer(line)) + 1 for line in lines]
        first_line = section.first_line or 1
        chunks: list[Chunk] = []
        start = 0
        while start < len(lines):
            end, total = start, 0
            while end < len(lines) and (total + sizes[end] <= self.chunk_size or end == start):
                total += sizes[end]
                end += 1
            body = "\n".join(lines[start:end])
            if body.strip():
                chunks.append(Chunk(body, 0, title, None, first_line + start, first_line + end - 1))
            if end >= len(lines):
                break
            back, overlap = end, 0
            while back > start + 1 and overlap + sizes[back - 1] <= self.chunk_overlap:
                back -= 1
                overlap += sizes[back]
            start = back
        return chunks


def _only_headings(body: str) -> bool:
    lines = [line for line in body.splitlines() if line.strip()]
    return bool(lines) and all(line.lstrip().startswith("#") for line in lines)


def _heading_path(title: str, header_path: str, body: str) -> str:
    parts = [part for part in header_path.strip("/").split("/") if part]
    first = body.lstrip().split("\n", 1)[0]
    if first.startswith("#"):
        parts.append(first.lstrip("#").strip())
    if not parts or parts[0] != title:
        parts.insert(0, title)
    return " › ".join(parts)
