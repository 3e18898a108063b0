# Two commands do all the set-up: `make demo` and `make test` (or `make check`).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := runs/demo
DEMO_SENTENCE := the old man did not see the red car of his daughter .

.PHONY: install demo test check check-cluster clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The main job: prepare the built-in English→French corpus, train the default RNN with
# Luong attention, evaluate on the test set (BLEU, then the attention's alignment error rate
# against the corpus's gold alignments), and draw one alignment.
demo: install
	$(BIN)/attnjax prepare --config configs/default.py
	$(BIN)/attnjax train --config configs/default.py --workdir $(DEMO)
	$(BIN)/attnjax eval --workdir $(DEMO) --split test
	$(BIN)/attnjax eval --workdir $(DEMO) --split test --alignment
	$(BIN)/attnjax align --workdir $(DEMO) --src "$(DEMO_SENTENCE)" --out $(DEMO)/alignment.png

# Every property at its smallest sizes, in minutes; `make check` adds the tests marked slow and
# the cluster tests, which run jobs on a one-node SLURM when SLURM_CONF names one and skip
# otherwise (.ci/run brings one up: experiments/cluster/local_slurm.sh); it ends with the 20
# slowest tests' times, what to lighten when the suite nears CI's limit.
test: install
	$(BIN)/python -m pytest -q -m "not slow and not cluster"

check: install
	$(BIN)/python -m pytest -q --durations=20

check-cluster: install
	$(BIN)/python -m pytest -q -m cluster

clean:
	rm -rf $(VENV) runs
