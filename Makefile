# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench docs install clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# CPU build of torch from the local wheel (pip's find-links); CUDA builds work too.
	$(PY) -m pip install --quiet "torch==2.13.0"
	# the versions the tests passed with (constraints.txt); pyproject.toml keeps the loose ranges
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/chemtomo demo --out demo-output

# two test processes, one torch thread each (tests/conftest.py): never more threads than the 2 cores
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow"

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	cd benchmarks && ../$(PY) run_all.py

docs: $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	$(PY) docs/make_api.py
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) demo-output site
