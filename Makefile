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
# The oldest cryptography setup.cfg allows (keep the two in step), installed
# apart and put first on the path for the tests of the code that uses it most.
CRYPTO_FLOOR ?= .floor-cryptography
CRYPTO_FLOOR_MAJOR := 42
CRYPTO_FLOOR_STAMP := $(CRYPTO_FLOOR)/.installed

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

$(CRYPTO_FLOOR_STAMP): setup.cfg $(STAMP)
	rm -rf $(CRYPTO_FLOOR)
	$(BIN)/python -m pip install --quiet --target $(CRYPTO_FLOOR) 'cryptography==$(CRYPTO_FLOOR_MAJOR).*'
	touch $(CRYPTO_FLOOR_STAMP)

$(TORCH): setup.cfg pyproject.toml
	test -x $(TORCH_VENV)/bin/python || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TORCH_VENV)/bin/python -m pip install --quiet 'torch==2.13.0'
	$(TORCH_VENV)/bin/python -m pip install --quiet -e '.[test,torch]'
	touch $(TORCH)

system-deps:
	bash .ci/system-deps

test: $(STAMP) $(CHECKOV) $(FLOWER) $(TORCH) $(CRYPTO_FLOOR_STAMP) system-deps
	PATH="$(CURDIR)/$(CHECKOV_VENV)/bin:$$PATH" $(BIN)/python -m pytest -ra
	$(TORCH_VENV)/bin/python -m pytest -ra -p no:cacheprovider tests/trainers
	PYTHONPATH=$(CRYPTO_FLOOR) $(BIN)/python -c 'import cryptography as c;\
		assert c.__version__.startswith("$(CRYPTO_FLOOR_MAJOR)."), c.__version__'
	PYTHONPATH=$(CRYPTO_FLOOR) $(BIN)/python -m pytest -ra -p no:cacheprovider \
		tests/secagg tests/client tests/test_securemachine.py \
		tests/test_securemachine_prg.py tests/test_securemachine_signed.py

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
	rm -rf $(VENV) $(CHECKOV_VENV) $(TORCH_VENV) $(CRYPTO_FLOOR) build *.egg-info
