# Two entry points on a fresh machine (Python 3.11 + g++): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# pythia8mc must come from a wheel: the 8.318 sdist compiles for over an hour.
	$(PY) -m pip install -q --only-binary=pythia8mc -e '.[test,generate,rtl]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/qtrigger run configs/l1_ttbar_event.yaml --overwrite

test: $(VENV)/.installed
	$(PY) -m pytest -q

.PHONY: install demo test
