# The two commands: `make demo` and `make test`. Each does all of its own set-up.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test install lint typecheck system-deps clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch==2.13.0 is pinned in pyproject.toml: pip takes the CPU build from local disk.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e ".[dev]"
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

install: $(STAMP)

demo: install
	@rm -f demo.db
	$(BIN)/careradar --config config/demo.yaml run --once
	$(BIN)/careradar --config config/demo.yaml triage list
	@echo
	@echo "Stored in demo.db (SQLite). Try: $(BIN)/careradar --config config/demo.yaml status"

# Servers the integration tests start themselves (IMAP, browser) come from Debian.
system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  pg_isready -q -h 127.0.0.1 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start || true; \
	fi

lint: install
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/ruff format --check pipeline tests benchmarks

typecheck: install
	$(BIN)/mypy

test: install system-deps lint typecheck
	$(BIN)/pytest

clean:
	rm -rf $(VENV) demo.db .pytest_cache .mypy_cache .ruff_cache
