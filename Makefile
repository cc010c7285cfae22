# Everything installs into .venv; `make serve` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# torch is pinned first: left to pip, sentence-transformers' bare `torch` requirement can pull a
# multi-GB CUDA build. Set TORCH_SPEC="torch" (or a CUDA index URL) on a GPU machine.
TORCH_SPEC ?= torch==2.13.0
WATCH  ?=

.PHONY: install serve test lint typecheck unit bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

serve: install
	$(BIN)/llm-eng serve $(if $(WATCH),--watch "$(WATCH)")

lint: install
	$(BIN)/ruff check llm_engineering tests benchmarks
	$(BIN)/ruff format --check llm_engineering tests benchmarks

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/python -m pytest -q --durations=15

bench: install
	$(BIN)/python benchmarks/ingest_search.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
