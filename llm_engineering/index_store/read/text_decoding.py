"""Bytes that should be text, decoded: BOMs, UTF-8, else the detected encoding; binary refused."""

from __future__ import annotations

import re

from llm_engineering.errors import DocumentError

__all__ = ["decode_text"]


def decode_text(data: bytes) -> str:
    """Decode bytes that should be text; refuse binary data.

    Raises:
        DocumentError: the bytes look binary or match no text encoding.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"invalid UTF-16 text: {exc.reason}") from exc
        nul = text.find("\x00")
        if nul != -1:
            raise DocumentError(f"binary data, not text (NUL character at position {nul})")
        return text
    # The whole file, not its start: text followed by megabytes of NULs is still binary (and
    # would be served back as one line of them). A memchr: milliseconds for the largest file.
    nul = data.find(b"\x00")
    if nul != -1:
        raise DocumentError(f"binary data, not text (NUL byte at offset {nul})")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    encoding = _detect_encoding(data[:262144])
    if encoding is None:
        raise DocumentError("binary data, not text (no text encoding matches)")
    text = data.decode(encoding, errors="replace")
    # Counted over the whole text (a regex: fast), for the same reason as the NULs above.
    _, controls = _CONTROLS.subn("", text)
    if controls > max(8, len(text) // 100):
        raise DocumentError("binary data, not text (control characters)")
    return text


_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")
"""Control characters that are not text layout (tab, newline, carriage return, form feed)."""


# Western European legacy encodings: latin-1 files are read as cp1252 (its superset).
_WESTERN = frozenset({"cp1252", "latin_1", "iso8859_15"})


def _detect_encoding(sample: bytes) -> str | None:
    """The encoding charset-normalizer finds least chaotic, cp1252 when it is among the best.

    Short Western text ("crème brûlée") decodes without chaos in a dozen code pages, and
    charset-normalizer's first pick among those ties is arbitrary (cp1250 gives "crčme
    brűlée"); cp1252 is by far the most common of them, so it wins a tie.
    """
    from charset_normalizer import from_bytes

    matches = list(from_bytes(sample))
    if not matches:
        return None
    lowest = min(match.chaos for match in matches)
    if any(m.encoding in _WESTERN for m in matches if m.chaos <= lowest + 0.01):
        return "cp1252"
    return str(matches[0].encoding)
