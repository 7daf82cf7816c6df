# make run   - the embedded default (SQLite, in-process jobs) on http://localhost:6543
# make test  - every test, against real MariaDB and Redis (started if installed but down;
#              Chromium for the browser test is apt-installed if missing)
# make lint, make docs, make clean, make distclean
#
# Nothing needs activating: everything runs from .venv/bin. A stamp file in
# .venv records each install, so pip runs again only when a pyproject.toml
# changes (or a plugin appears under plugins/).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
RUFF ?= ruff

# The browser test of the password-reset page drives Debian's Chromium.
CHROMIUM := $(or $(VEXPENSES_TEST_CHROMIUM),/usr/bin/chromium)

PLUGIN_PYPROJECTS := $(wildcard plugins/*/pyproject.toml)
TEST_PATHS = tests $(wildcard examples/hello/tests) $(wildcard plugins/*/tests)

.PHONY: run test lint docs services system-packages clean distclean

run: $(VENV)/.stamp-run
	$(VENV)/bin/pserve development.ini

test: $(VENV)/.stamp-test services system-packages
	$(PY) -m pytest $(TEST_PATHS)

lint: $(VENV)/.stamp-lint
	$(PY) -m ruff check .

docs: $(VENV)/.stamp-test
	$(VENV)/bin/mkdocs build --strict

services:
	bash .ci/services

# Debian packages the tests need, installed when missing (as root, with apt-get).
system-packages:
	@if [ -x '$(CHROMIUM)' ]; then \
	    echo "system-packages: Chromium is at $(CHROMIUM)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "system-packages: installing Debian's chromium"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends chromium fonts-liberation; \
	else \
	    echo "Chromium is not at $(CHROMIUM): sudo apt-get install chromium," \
	        "or set VEXPENSES_TEST_CHROMIUM to a Chromium binary" >&2; \
	    exit 1; \
	fi

$(PY):
	$(PYTHON) -m venv $(VENV)

# The core and every plugin: development.ini enables them all. make test's
# install holds all of it: when its stamp is newer than these pyproject.toml
# files, there is nothing to install (tests/test_readme.py runs `make run`
# inside `make test`).
RUN_INSTALL = $(PIP) install -e . $(patsubst %/pyproject.toml,-e %,$(PLUGIN_PYPROJECTS))
$(VENV)/.stamp-run: pyproject.toml $(PLUGIN_PYPROJECTS) | $(PY)
	@if [ -f $(VENV)/.stamp-test ] && [ -z "$$(find $^ -newer $(VENV)/.stamp-test)" ]; then \
	    echo "$@: make test's install already has the core and every plugin"; \
	else \
	    echo '$(RUN_INSTALL)' && $(RUN_INSTALL); \
	fi
	touch $@

# The core with its test extra, the example plugin, and every plugins/<name>/
# with its test extra (pip only warns when a plugin has none), in one
# resolution so that plugins get the local vexpenses-core.
$(VENV)/.stamp-test: pyproject.toml examples/hello/pyproject.toml $(PLUGIN_PYPROJECTS) | $(PY)
	$(PIP) install -e '.[test]' -e examples/hello \
	    $$(for p in plugins/*/; do \
	        if [ -f "$${p}pyproject.toml" ]; then printf -- '-e %s[test] ' "$${p%/}"; fi; \
	    done)
	touch $@

$(VENV)/.stamp-lint: | $(PY)
	$(PIP) install '$(RUFF)'
	touch $@

clean:
	rm -rf build dist site .pytest_cache .ruff_cache .tox
	find . \( -path ./$(VENV) -o -path ./.git \) -prune -o \
	    \( -name __pycache__ -o -name '*.egg-info' -o -name build -o -name dist \) \
	    -type d -prune -exec rm -rf {} +

# Also the virtualenv and the development database and uploads in var/.
distclean: clean
	rm -rf $(VENV) var
