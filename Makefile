# campwatch: `make demo` and `make test` are the two commands a newcomer needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck bench soak soak-faults dashboards clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,postgres]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/campwatch demo

test: $(STAMP)
	$(BIN)/ruff check agent tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check agent tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

soak: $(STAMP)
	$(BIN)/python benchmarks/soak.py

soak-faults: $(STAMP)
	$(BIN)/python benchmarks/soak_faults.py --minutes $(or $(MINUTES),30)

dashboards: $(STAMP)
	$(BIN)/python -m agent.exporters.dashboards dashboards/

clean:
	rm -rf var tests/.build .pytest_cache .ruff_cache .mypy_cache
