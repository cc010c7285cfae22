"""Zip-based documents (.docx) measured from the archive's directory before extraction.

A few hundred KB on disk can inflate to gigabytes (a "zip bomb"), so the size limit on
disk says nothing about the cost of parsing. The central directory records each member's
packed and unpacked size; it is read without decompressing anything.
"""

from __future__ import annotations

import io
import zipfile

from llm_engineering.errors import DocumentError

__all__ = ["MAX_RATIO", "ZIP_TYPES", "check_unpacked_size"]

ZIP_TYPES = frozenset({"docx"})
MAX_RATIO = 100
"""Largest unpacked:packed ratio of one member; ordinary XML compresses 5-20:1."""
# Members this small may compress far better than MAX_RATIO without costing anything.
_SMALL_MEMBER = 1024 * 1024


def check_unpacked_size(data: bytes, limit: int) -> None:
    """Refuse an archive whose members unpack past ``limit`` bytes in all, or past MAX_RATIO.

    Raises:
        DocumentError: the archive is too large unpacked, or a member's
            compression ratio is past MAX_RATIO; the message names the limit.
    """
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError):
        return  # not a zip at all: the format's reader says so in its own words
    total = sum(member.file_size for member in members)
    if total > limit:
        raise DocumentError(
            f"unpacks to {total / 1048576:.1f} MiB, over the {limit / 1048576:g} MiB limit "
            "(max_unpacked_mb); nothing was extracted"
        )
    for member in members:
        if member.file_size > _SMALL_MEMBER and (
            member.file_size > MAX_RATIO * max(member.compress_size, 1)
        ):
            ratio = member.file_size / max(member.compress_size, 1)
            raise DocumentError(
                f"{member.filename} is compressed {ratio:.0f}:1 ({member.file_size / 1048576:.1f} "
                f"MiB unpacked), past the {MAX_RATIO}:1 limit for zip members; nothing was extracted"
            )
