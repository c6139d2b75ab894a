# Front door of the project. Every target creates and uses the virtual environment .venv/.
SHELL := bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: help venv lint typecheck test test-quick k8s-assets demo docs clean bench

help:
	@echo "make test        lint, type-check and run every test (real kube-apiserver and etcd)"
	@echo "make test-quick  only the tests that need no cluster (no lint, no type checks)"
	@echo "make demo        run the operator on a local control plane with the examples applied"
	@echo "make docs        regenerate docs/reference.md from the CRD schemas"
	@echo "make bench       run the benchmarks (BENCH_ARGS=\"--scale 0.1 --only convergence\")"
	@echo "make k8s-assets  print the directory of kube-apiserver, etcd and kubectl (builds them once)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check operator tests hack
	$(BIN)/ruff format --check operator tests hack

typecheck: $(STAMP)
	$(BIN)/mypy

k8s-assets:
	@hack/k8s-assets.sh

test: lint typecheck
	KUBEBUILDER_ASSETS="$$(hack/k8s-assets.sh)" $(BIN)/pytest $(PYTEST_ARGS)

docs: $(STAMP)
	$(BIN)/python hack/gen_reference.py

demo: $(STAMP)
	KUBEBUILDER_ASSETS="$$(hack/k8s-assets.sh)" $(BIN)/python hack/demo.py $(DEMO_ARGS)

bench: $(STAMP)
	KUBEBUILDER_ASSETS="$$(hack/k8s-assets.sh)" $(BIN)/python -m bench.run $(BENCH_ARGS)

test-quick: $(STAMP)
	$(BIN)/pytest --no-cluster $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
