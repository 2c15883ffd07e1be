# Two commands for a newcomer: `make run` (main job, end to end) and `make test` (whole suite).
# Both create the virtual environment in .venv on first use and install everything they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint system-deps benchmark clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: create the environment and run the whole pipeline on the default data into outputs/
run: $(STAMP)
	$(BIN)/geo-crime run

## system-deps: Debian packages the browser tests need (headless Chromium and its driver)
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		if [ "$$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

## lint: ruff lint and format check, and the stages' import layers (pyproject's importlinter)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

## test: create the environment, install system packages, lint, and run the whole test suite
test: $(STAMP) system-deps lint
	$(BIN)/python -m pytest

## benchmark: time every stage at 1M rows (prints a table, saves JSON)
benchmark: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) outputs/*/ .pytest_cache .ruff_cache
