# Two entry points on a fresh machine (Python 3.11 + g++): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# quantization.method: hgq. hgq2 is NOT a pip dependency: every hgq2 release ships its own `qkeras` package
# that shadows QKeras 0.9.0 in site-packages (pip check stays clean). It goes into its own folder, without its
# `qkeras`, and qtrigger.models.hgq appends that folder to sys.path; its deps (keras 3, quantizers) are in pyproject.
HGQ2 := hgq2==0.2.0
HGQ2_DIR := $(VENV)/hgq2

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# pythia8mc must come from a wheel: the 8.318 sdist compiles for over an hour.
	$(PY) -m pip install -q --only-binary=pythia8mc -e '.[test,generate,rtl]'
	rm -rf $(HGQ2_DIR)
	$(PY) -m pip install -q --no-deps --target $(HGQ2_DIR) '$(HGQ2)'
	rm -rf $(HGQ2_DIR)/qkeras
	# da4ml's numba solver compiles once (~75 s) into its on-disk cache: pay it here, not in the first RTL build.
	$(PY) -c "from qtrigger.firmware.rtl import warm_solver_cache as w; print(f'da4ml solver compiled in {w():.0f} s')"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/qtrigger run configs/l1_ttbar_event.yaml --overwrite

# Two pytest-xdist workers, one test file per worker at a time (module fixtures are built once);
# the fast lane for daily work is `$(PY) -m pytest -m "not slow"` (no xdist needed).
test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 --dist loadfile

.PHONY: install demo test
