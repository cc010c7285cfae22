"""Prose in one pass: blocks of bounded size, packed into chunks from token offsets.

Each block is tokenized once, with offsets, and its sentences (found by a regex that cannot
backtrack far) are packed greedily into chunks of at most ``chunk_size`` tokens that overlap
by whole sentences of at most ``chunk_overlap`` tokens. A text longer than ``STREAM_CHARS``
is first cut into blocks at paragraph, line or sentence ends. (LlamaIndex's sentence
splitter, used before for every text under that size, tokenized its input once per level of
splitting and ran nltk's sentence regex over all of it: 1.8x slower, and it gave up after
5 s on a 20 MB text.)
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from itertools import pairwise

__all__ = ["STREAM_CHARS", "LineCounter", "pack_block", "stream_blocks"]

STREAM_CHARS = 250_000
"""Prose longer than this streams, in blocks of at most this many characters."""
# Where a block may end, best first: a paragraph, a line, a sentence, a word.
_BLOCK_ENDS = ("\n\n", "\n", ". ", " ")
# One end character, at most three closers, then blanks: linear (a repeated end character
# such as ``[.!?]+`` would backtrack quadratically over a long run of dots).
_SENTENCE_END = re.compile(r"[.!?。！？][\"')\]”’»]{0,3}\s+|\n\s*|[。！？]")


class LineCounter:
    """1-based line numbers of offsets in one source, counted on from the offset asked last.

    Chunks come in order, so a document costs one pass over its newlines instead of one
    pass per chunk (quadratic: minutes for a 20 MB file).
    """

    def __init__(self, source: str, first_line: int):
        self._source = source
        self._first = first_line
        self._offset = 0
        self._line = first_line

    def span(self, start: int, text: str) -> tuple[int, int]:
        """(start_line, end_line) of ``text`` found at offset ``start``."""
        if start < self._offset:
            self._offset, self._line = 0, self._first
        self._line += self._source.count("\n", self._offset, start)
        self._offset = start
        return self._line, self._line + text.rstrip("\n").count("\n")


def stream_blocks(text: str, size: int = STREAM_CHARS) -> list[tuple[int, str]]:
    """``text`` cut into (offset, block) of at most ``size`` characters.

    Each block ends after the last paragraph break in its second half, else the last
    line break, sentence end or space there; a text with none of them is cut at ``size``.
    """
    blocks = []
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = -1
        for mark in _BLOCK_ENDS:
            found = text.rfind(mark, start + size // 2, end)
            if found != -1:
                cut = found + len(mark)
                break
        cut = cut if cut != -1 else end
        blocks.append((start, text[start:cut]))
        start = cut
    blocks.append((start, text[start:]))
    return blocks


def _sentence_starts(block: str) -> list[int]:
    """Offsets where a sentence (or line) starts: after ``. ! ?`` (and up to three closing
    quotes) followed by whitespace, after a line break and its blanks, after ``。！？``."""
    starts = [0, *(match.end() for match in _SENTENCE_END.finditer(block))]
    return sorted({start for start in starts if start < len(block)})


def pack_block(
    block: str, offsets: Sequence[tuple[int, int]], chunk_size: int, chunk_overlap: int
) -> list[tuple[int, str]]:
    """(offset, text) of the chunks of ``block``, given its tokens' character offsets.

    Sentences are added to a chunk while its tokens fit ``chunk_size``; the next chunk
    starts with the last sentences of the previous one that fit ``chunk_overlap``. A
    sentence longer than ``chunk_size`` is cut into windows of ``chunk_size`` tokens.
    """
    token_starts = [start for start, _ in offsets]
    bounds = [*_sentence_starts(block), len(block)]
    units = [
        (a, b, bisect_left(token_starts, b) - bisect_left(token_starts, a))
        for a, b in pairwise(bounds)
    ]
    chunks: list[tuple[int, str]] = []

    def emit(a: int, b: int) -> None:
        text = block[a:b]
        stripped = text.strip()
        if stripped:
            chunks.append((a + len(text) - len(text.lstrip()), stripped))

    current: list[tuple[int, int, int]] = []
    size = 0
    fresh = True  # ``current`` holds only the previous chunk's overlap
    for unit in units:
        a, b, count = unit
        if count > chunk_size:
            if current and not fresh:
                emit(current[0][0], current[-1][1])
            current, size, fresh = [], 0, True
            first = bisect_left(token_starts, a)
            last = bisect_left(token_starts, b)
            step = max(1, chunk_size - chunk_overlap)
            for i in range(first, last, step):
                j = min(i + chunk_size, last)
                emit(offsets[i][0] if i > first else a, offsets[j - 1][1] if j < last else b)
                if j == last:
                    break
            continue
        if size + count > chunk_size and not fresh:
            emit(current[0][0], current[-1][1])
            kept: list[tuple[int, int, int]] = []
            overlap = 0
            for previous in reversed(current):
                if overlap + previous[2] > chunk_overlap:
                    break
                kept.insert(0, previous)
                overlap += previous[2]
            current, size, fresh = kept, overlap, True
        while current and size + count > chunk_size:
            size -= current.pop(0)[2]
        current.append(unit)
        size += count
        fresh = False
    if current and not fresh:
        emit(current[0][0], current[-1][1])
    return chunks
