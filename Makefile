# The README's two quick-start commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fednet-installed

.PHONY: demo test lint typecheck bench system-deps clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fednet demo

system-deps:
	bash .ci/system-deps

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -ra

lint: $(STAMP)
	$(BIN)/flake8 fednet tests deploy benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/fednet bench

clean:
	rm -rf $(VENV) build *.egg-info
