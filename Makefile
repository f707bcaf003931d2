# elfctl: `make up` brings the local platform up, `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_FLAGS ?= -q

.PHONY: install system-deps up test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -e '.[dev]'
	touch $@

install: $(VENV)/.installed

system-deps:
	scripts/system-deps

up: install system-deps
	$(VENV)/bin/elfctl infra up

test: install system-deps
	scripts/test

lint: install
	$(VENV)/bin/ruff check src tests bench

bench: install system-deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache bench/results
