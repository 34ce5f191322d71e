# Two entry points: `make demo` (the main job) and `make test` (the test suite).
# Each installs what it needs: Debian packages, a virtual environment with the CPU build of torch
# (installed first, so that pip never pulls a CUDA build), then the project itself.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= data/synth
RUN    ?= runs/edge
EPOCHS ?=
HARD   ?= data/hard
SEEDS  ?= 0,1,2

.PHONY: demo test test-slow system-deps install bench bench-accuracy clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(STAMP)

system-deps:
	scripts/install-system-deps.sh

# Main job: offline dataset (encoded by the integer front end) -> train the edge preset -> quantize to int8
# -> generate C -> host parity (counts, then audio in / class out) -> Cortex-M4 firmware on QEMU (target parity,
# flash/RAM, emulator instructions per inference) -> figures -> the audio app on the emulated Cortex-M4.
demo: install system-deps
	@if [ -f $(DATA)/dataset.json ] && [ -f $(DATA)/frontend.int.npz ]; then echo "using existing dataset $(DATA)"; \
	  else $(BIN)/delrec-edge data synth --out $(DATA) --force; fi
	$(BIN)/delrec-edge train --preset edge --data $(DATA) --out $(RUN) --force $(if $(EPOCHS),--epochs $(EPOCHS))
	$(BIN)/delrec-edge quantize $(RUN)
	$(BIN)/delrec-edge codegen $(RUN) --force
	$(BIN)/delrec-edge parity $(RUN)
	$(BIN)/delrec-edge firmware run --target cortex-m4 --model $(RUN) --samples 32
	$(BIN)/delrec-edge report $(RUN) --no-progress
	$(BIN)/delrec-edge firmware run --target cortex-m4 --model $(RUN) --audio

test: install system-deps
	$(BIN)/python -m pytest -q

test-slow: install system-deps
	$(BIN)/python -m pytest -q --slow

bench: install
	$(BIN)/delrec-edge bench-train --preset shd
	$(BIN)/delrec-edge bench-frontend
	$(BIN)/delrec-edge bench-density
	@if [ -f $(RUN)/model.int.npz ]; then $(BIN)/delrec-edge bench-infer $(RUN); \
	  else echo "bench-infer skipped: no $(RUN)/model.int.npz (run 'make demo' first)"; fi

# The accuracy table of the README: the hard benchmark (all folds) and the offline dataset, SNN float and int8
# beside the baselines, over SEEDS. Long (hours on 2 cores); finished runs are reused when it is run again.
bench-accuracy: install system-deps
	@if [ -f $(HARD)/corpus.json ]; then echo "using existing corpus $(HARD)"; \
	  else $(BIN)/delrec-edge data hard --out $(HARD); fi
	@if [ -f $(DATA)/dataset.json ]; then echo "using existing dataset $(DATA)"; \
	  else $(BIN)/delrec-edge data synth --out $(DATA); fi
	$(BIN)/delrec-edge bench-accuracy --corpus $(HARD) --work runs/accuracy-hard --seeds $(SEEDS) --markdown runs/accuracy-hard/table.md
	$(BIN)/delrec-edge bench-accuracy --data $(DATA) --work runs/accuracy-easy --seeds $(SEEDS) --markdown runs/accuracy-easy/table.md

clean:
	rm -rf $(VENV) build *.egg-info
