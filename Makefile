# The two commands of the README. Both create .venv on first use.
#   make run    set up, then run the main job: the local sweep on bundled digits and its report
#               (results in results/local, the report in results/local/report/report.html)
#   make test   set up, then run the test suite
# TORCH pins the torch that is installed first, so pip never pulls a multi-GB CUDA build by
# accident; override it for a GPU machine, e.g.  make run TORCH="torch==2.13.0 --index-url ..."
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: run test setup
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

run: setup
	$(BIN)/memsweep run --preset local; status=$$?; $(BIN)/memsweep report results/local && exit $$status

test: setup
	$(BIN)/python -m pytest -q
