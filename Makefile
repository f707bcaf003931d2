# elfctl: `make up` brings the local platform up, `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS ?= -q

.PHONY: install system-deps test-deps up test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Debian packages: `up` installs what the platform runs on, `test` adds what only the tests use.
system-deps:
	scripts/system-deps

test-deps:
	scripts/system-deps --test

up: install system-deps
	$(VENV)/bin/elfctl infra up

test: install test-deps
	scripts/test

lint: install
	$(VENV)/bin/ruff check src tests bench

bench: install test-deps  # the benchmarks use the tests' real services (tests/realservices.py)
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache bench/results
