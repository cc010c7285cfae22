"""A parse worker process: reads, parses and chunks the files :class:`ParsePool` sends it.

Run as ``python -m llm_engineering.index_store.read.parse_worker MEMORY_BYTES``. Requests and
answers are JSON frames (an 8-byte length, then the body) on stdin and stdout; file
descriptor 1 is moved to stderr at start, so nothing a library prints can reach the
frames (or, under ``llm-eng serve``, the MCP stream). The process's address space is
capped at MEMORY_BYTES, and it dies with its parent (Linux) or at the end of its stdin.

It says ``ready`` once its imports are done, and ``configured`` to a ``configure``
message (a config id and its chunk sizes, tokenizer and limits), so that neither counts
against a file's time. A request (``path``, ``old_sha256``, ``max_bytes``, ``config_id``)
is answered with ``status``: ``parsed`` (sha256, size, title, chunks, units, pages),
``unchanged`` (the sha256 is ``old_sha256``: nothing parsed),
``missing`` (the file is gone), ``too_large`` (``size``: it grew past ``max_bytes``),
``out_of_memory`` (then the process exits) or ``failed`` (``error``).
"""

from __future__ import annotations

import logging
import os
import struct
import sys
from pathlib import Path
from typing import IO, Any

__all__ = ["read_frame", "write_frame"]

log = logging.getLogger("llm_engineering.parse_worker")

_HEADER = struct.Struct(">Q")


def write_frame(stream: IO[bytes], message: dict[str, Any]) -> None:
    import json

    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def read_frame(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next frame, or None at the end of the stream."""
    import json

    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (length,) = _HEADER.unpack(header)
    body = stream.read(length)
    if len(body) < length:
        return None
    message: dict[str, Any] = json.loads(body)
    return message


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass  # stdin's end still stops the loop


class _Parser:
    """The chunkers and limits of every config id seen, and the work on one request."""

    def __init__(self) -> None:
        self._configs: dict[str, tuple[Any, Any]] = {}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        from llm_engineering.errors import DocumentError
        from llm_engineering.hashing import sha256_bytes

        if "configure" in request:
            self._configs[request["configure"]] = self._configure(request["config"])
            return {"status": "configured"}
        chunker, limits = self._configs[request["config_id"]]
        path = Path(request["path"])
        max_bytes = int(request["max_bytes"])
        try:
            with path.open("rb") as handle:
                data = handle.read(max_bytes + 1)
                size = os.fstat(handle.fileno()).st_size
        except FileNotFoundError:
            return {"status": "missing"}
        except OSError as exc:
            return {"status": "failed", "error": f"cannot read file: {exc.strerror or exc}"}
        if len(data) > max_bytes:
            return {"status": "too_large", "size": max(size, len(data))}
        sha = sha256_bytes(data)
        answer: dict[str, Any] = {"sha256": sha, "size": len(data)}
        if sha == request.get("old_sha256"):
            return {**answer, "status": "unchanged"}
        try:
            return {**answer, "status": "parsed", **self._parse(path, data, chunker, limits)}
        except DocumentError as exc:
            return {**answer, "status": "failed", "error": str(exc)}
        except MemoryError:
            raise
        except Exception as exc:  # a reader bug must not stop the other files
            log.exception("unexpected error reading %s", path)
            return {
                **answer,
                "status": "failed",
                "error": f"unexpected error: {type(exc).__name__}: {exc}",
            }

    @staticmethod
    def _configure(config: dict[str, Any]) -> tuple[Any, Any]:
        from llm_engineering.index_store.read.chunking import Chunker
        from llm_engineering.index_store.read.readers import ReadLimits
        from llm_engineering.index_store.read.tokens import tokenizer_from_spec

        chunker = Chunker(
            config["chunk_size"], config["chunk_overlap"], tokenizer_from_spec(config["tokenizer"])
        )
        chunker.warm_up()
        return chunker, ReadLimits(**config["limits"])

    @staticmethod
    def _parse(path: Path, data: bytes, chunker: Any, limits: Any) -> dict[str, Any]:
        from llm_engineering.index_store.read.readers import document_units, read_document

        doc = read_document(path, data, limits)
        del data
        chunks = chunker.chunk(doc)
        units, pages = document_units(doc)
        return {
            "title": doc.title,
            "chunks": [[c.text, c.heading, c.page, c.start_line, c.end_line] for c in chunks],
            "units": units,
            "pages": pages,
        }


def main() -> None:
    # The frames keep fd 1's pipe; prints from any library land on stderr.
    frames_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    frames_in = sys.stdin.buffer
    _die_with_parent()
    if len(sys.argv) > 1:
        import resource

        limit = int(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    from llm_engineering.logs import setup_logging

    setup_logging("WARNING")
    # nltk imports scipy.stats (about 1 s of each worker's start, and workers are replaced
    # after every timeout) for a collocation statistic that no reader or splitter calls;
    # with the import refused it defines a stub instead.
    sys.modules.setdefault("scipy.stats", None)  # type: ignore[arg-type]
    # Every reader's library now, so no file pays for an import.
    import bs4  # noqa: F401
    import docx  # noqa: F401
    import pypdf  # noqa: F401

    import llm_engineering.index_store.read.chunking
    import llm_engineering.index_store.read.readers  # noqa: F401

    parser = _Parser()
    write_frame(frames_out, {"status": "ready"})
    while True:
        request = read_frame(frames_in)
        if request is None:
            return
        try:
            answer = parser.handle(request)
        except MemoryError:
            answer = {"status": "out_of_memory"}
        write_frame(frames_out, answer)
        if answer["status"] == "out_of_memory":
            return  # after a MemoryError the heap is in pieces: start afresh


if __name__ == "__main__":
    main()
