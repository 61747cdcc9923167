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

# The integration tests need PostgreSQL on 127.0.0.1:5432 (trust auth), which the development
# and CI machines run; on a fresh Debian machine this installs and starts it. The IMAP tests start
# their own dovecot. chromium (with playwright) is installed for the browser tests of the web
# triage board, which is not built yet: no test drives it today.
system-deps:
	@missing=""; \
	command -v /usr/sbin/dovecot >/dev/null || missing="$$missing dovecot-imapd"; \
	command -v /usr/bin/chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing (apt)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "warning: missing$$missing; install them (apt-get install -y$$missing) or their tests fail under CI"; \
	  fi; \
	fi
	@if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
	  if [ "$$(id -u)" = "0" ] && ! command -v pg_ctlcluster >/dev/null && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	    hba=$$(ls /etc/postgresql/*/main/pg_hba.conf | head -1); \
	    sed -i '1i host all all 127.0.0.1/32 trust' "$$hba"; \
	  fi; \
	  if command -v pg_ctlcluster >/dev/null; then \
	    pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | head -1) main start || true; \
	  fi; \
	  pg_isready -q -h 127.0.0.1 -p 5432 || echo "warning: PostgreSQL is not reachable on 127.0.0.1:5432; its tests will fail under CI"; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

test: install system-deps lint typecheck
	$(BIN)/pytest

clean:
	rm -rf $(VENV) demo.db .pytest_cache .mypy_cache .ruff_cache
