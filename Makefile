# aiofutu developer commands. `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck lint-imports demo protos bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict aiofutu

lint-imports: $(STAMP)
	$(BIN)/lint-imports

# two workers: most tests wait on sockets and subprocesses (6.5 min instead of 10.5 on 2 cores);
# a group (tests/test_docs.py) stays on one worker, so its shared fixture runs once
test: lint typecheck lint-imports
	$(BIN)/python -m pytest -n 2 --dist loadgroup

demo: $(STAMP)
	$(BIN)/python -m aiofutu demo

protos: $(STAMP)
	$(BIN)/python tools/gen_protos.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

soak: $(STAMP)
	$(BIN)/python -m pytest -m slow -o timeout=0 -s tests/soak

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
