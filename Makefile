# The README's two quick-start commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fednet-installed
# checkov pins old dependencies (packaging<24): it lives in a venv of its own.
CHECKOV_VENV ?= .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# Flower, for the side-by-side benchmarks only, never a dependency of fednet.
FLOWER := benchmarks/.venv-flower/bin/flwr
# PyTorch, for the torch adapter's tests only (an extra, never a dependency):
# torch 2.13.0 is the CPU build (about 700 MB) where the machine keeps it.
TORCH_VENV ?= .venv-torch
TORCH := $(TORCH_VENV)/.fednet-torch-installed
# Every base dependency at the oldest release series setup.cfg allows
# (.ci/floors.py): the unit tests run on it too, so the floors stay true.
FLOOR_VENV ?= .venv-floor
FLOOR := $(FLOOR_VENV)/.fednet-installed
# Tests of no real browser, engine, network namespace or installed template
# tools (the floor's run; mypy's verdict depends on the stubs installed).
UNIT_TESTS := tests --ignore=tests/browser --ignore=tests/docker \
	--ignore=tests/deploy --ignore=tests/netns --ignore=tests/benchmarks \
	--ignore=tests/e2e --ignore=tests/fuzz

.PHONY: demo test lint typecheck bench soak system-deps templates clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fednet demo

$(CHECKOV):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov>=3.2'

$(FLOWER):
	bash benchmarks/flower/setup.sh $(PYTHON)

$(FLOOR): setup.cfg pyproject.toml .ci/floors.py
	test -x $(FLOOR_VENV)/bin/python || $(PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FLOOR_VENV)/bin/python .ci/floors.py setup.cfg > $(FLOOR_VENV)/constraints.txt
	$(FLOOR_VENV)/bin/python -m pip install --quiet \
		-c $(FLOOR_VENV)/constraints.txt -e '.[test]'
	touch $(FLOOR)

$(TORCH): setup.cfg pyproject.toml
	test -x $(TORCH_VENV)/bin/python || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TORCH_VENV)/bin/python -m pip install --quiet 'torch==2.13.0'
	$(TORCH_VENV)/bin/python -m pip install --quiet -e '.[test,torch]'
	touch $(TORCH)

system-deps:
	bash .ci/system-deps

test: $(STAMP) $(CHECKOV) $(FLOWER) $(TORCH) $(FLOOR) system-deps
	PATH="$(CURDIR)/$(CHECKOV_VENV)/bin:$$PATH" $(BIN)/python -m pytest -ra
	$(TORCH_VENV)/bin/python -m pytest -ra -p no:cacheprovider tests/trainers
	$(FLOOR_VENV)/bin/python -m pytest -ra -p no:cacheprovider $(UNIT_TESTS) \
		--deselect tests/test_house_style.py::test_mypy_strict_passes

templates: $(STAMP)
	$(BIN)/python deploy/gen_templates.py

lint: $(STAMP)
	$(BIN)/flake8 fednet tests deploy benchmarks/flower

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP) $(FLOWER)
	$(BIN)/fednet bench --flower --workloads all --json benchmarks/results/latest.json

# 200 runs back to back on one coordinator; `make soak SOAK_RUNS=20` for a short one.
SOAK_RUNS ?= 200
soak: $(STAMP)
	$(BIN)/fednet bench --workloads soak --runs $(SOAK_RUNS) --json benchmarks/results/soak.json

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(TORCH_VENV) $(FLOOR_VENV) build *.egg-info
