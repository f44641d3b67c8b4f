# alseg: `make run` and `make test` set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1

.PHONY: help setup run test test-all lint format typecheck bench clean label-studio docs

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1 || $(BIN)/pip install --quiet torch torchvision
	$(BIN)/pip install --quiet -e ".[dev,pretrained]"
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install alseg with its dev tools

run: $(STAMP)  ## run the default experiment (synthetic data, entropy sampling)
	$(BIN)/alseg run $(ARGS)

test: $(STAMP)  ## run the test suite (slow tests excluded)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP)  ## run every test, slow ones included
	$(BIN)/python -m pytest $(PYTEST_ARGS)

label-studio:  ## install the Label Studio server in .venv-labelstudio (labelling sessions, its end-to-end test)
	test -x .venv-labelstudio/bin/label-studio || \
	  ($(PYTHON) -m venv .venv-labelstudio && .venv-labelstudio/bin/pip install --quiet label-studio 'sentry-sdk<3')  # sentry-sdk 3 refuses Label Studio 1.23's options

lint: $(STAMP)  ## ruff lint and format check, and the import contracts (every import points down)
	$(BIN)/ruff check alseg tests scripts
	$(BIN)/ruff format --check alseg tests scripts
	$(BIN)/lint-imports

docs: $(STAMP)  ## build the docs site into site/ (warnings, broken links included, are errors)
	$(BIN)/pip install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

format: $(STAMP)  ## apply ruff formatting and fixes
	$(BIN)/ruff check --fix alseg tests scripts
	$(BIN)/ruff format alseg tests scripts

typecheck: $(STAMP)  ## mypy on the package
	$(BIN)/mypy alseg

bench: $(STAMP)  ## run the benchmarks in scripts/bench_*.py (installs baal for the MC comparison)
	$(BIN)/pip install --quiet -e ".[dev,pretrained,bench]"
	@for script in scripts/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
