# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
# Debian's own python3 when it can make a venv: its optimized build (PGO, LTO) runs emustore
# about a fifth faster than a plain source build (e.g. pyenv's); any other python3 otherwise.
PYTHON ?= $(shell /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null && echo /usr/bin/python3 || echo python3)
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: all setup venv lint test test-unit demo bench clean

all: test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

# bytecode compiled ahead, as a regular (non-editable) install does: a pull starts faster
venv: $(VENV)/.installed
	$(PY) -m compileall -q emustore

# Debian packages for the registry and dockerd tiers (installed when root and missing), and the
# Docker 26 and 28 engines (fetched into a cache once; a failure is fatal only under CI=true).
setup: venv
	bash scripts/setup-debian.sh
	bash scripts/fetch-engines.sh || { [ "$$CI" != true ] && echo "setup: engines 26/28 not fetched; their oracle tests will be skipped" >&2; }

lint: venv
	$(PY) -m ruff check --no-cache emustore tests scripts
	$(PY) -m mypy --no-incremental  # configured in pyproject.toml: strict on the whole package

test: setup lint
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

demo: setup
	$(PY) scripts/demo.py

# every engine and scenario, about 20 minutes on 2 cores (root); parts: BENCH_ARGS='--only many --runs 1',
# '--quick', ... (docs/benchmark.md, "Running it in pieces")
bench: setup
	$(PY) -m scripts.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache fake-docker .demo
