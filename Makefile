# The two commands of the README. Both create .venv on first use.
#   make run    set up, then run the main job: the local sweep on bundled digits and its report
#               (results in results/local, the report in results/local/report/report.html)
#   make test   set up, then run the test suite
#   make mutation   mutation testing of the science and durability core (mutmut; about an hour on
#               2 cores; not part of .ci/run): the summary goes to benchmarks/mutation.md
#   make reproduction   every -local claim preset and its report (results/<preset>), and the trials
#               tables REPRODUCTION.md quotes (docs/results/<preset>.parquet; tests check the quotes)
#   make boundary   the boundary presets through `memsweep refine` (under 2 hours on 2 cores), their
#               reports, the trials tables REPRODUCTION.md's boundary section quotes, and its figure
#               (docs/figures/boundary.png: onset depth against width, natural and random images)
#   make headline   the headline-local preset (1 h 36 min on 2 cores, in two parts), its report, the tables and
#               figures REPRODUCTION.md's headline section quotes (docs/results/headline-local*.parquet)
# TORCH pins the torch that is installed first, so pip never pulls a multi-GB CUDA build by
# accident; override it for a GPU machine, e.g.  make run TORCH="torch==2.13.0 --index-url ..."
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin

LOCAL_PRESETS ?= c1-local c2-local c3-local c3-linear-local c4-local c5-local c6-local
BOUNDARY_PRESETS ?= boundary-digits-local boundary-lfw-local boundary-random-local boundary-photos-local

.PHONY: run test setup reproduction boundary headline mutation
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[study,test]"
	touch $@

run: setup
	$(BIN)/memsweep run --preset local; status=$$?; $(BIN)/memsweep report results/local && exit $$status

test: setup
	$(BIN)/python -m pytest -q

# each preset of $(2) through `memsweep $(1)`, its report, and its trials table for REPRODUCTION.md
define each_preset
	for p in $(2); do \
	  $(BIN)/memsweep $(1) --preset $$p --out results/$$p && \
	  $(BIN)/memsweep report results/$$p --no-trajectories && \
	  $(BIN)/python -m analysis.snapshot results/$$p docs/results/$$p.parquet || exit 1; \
	done
endef

reproduction: setup
	$(call each_preset,run,$(LOCAL_PRESETS))

boundary: setup
	$(call each_preset,refine,$(BOUNDARY_PRESETS))
	$(BIN)/python -m analysis.snapshot --boundary docs/figures/boundary.png $(BOUNDARY_PRESETS:%=docs/results/%.parquet)

headline: setup
	$(BIN)/memsweep run --preset headline-local --out results/headline-local
	$(BIN)/memsweep report results/headline-local --no-trajectories
	$(BIN)/python -m analysis.snapshot --census docs/results/headline-local.parquet docs/figures/headline \
	  results/headline-local

mutation: setup
	$(BIN)/python -m pip install -q -e ".[mutation]"
	rm -rf mutants
	$(BIN)/mutmut run; $(BIN)/python benchmarks/mutation_summary.py --out benchmarks/mutation.md
