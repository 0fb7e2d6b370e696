# Every target creates .venv from nothing when it is missing (fast when it exists).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# nuscenes-devkit 1.2.0 pins numpy<2; its code runs on numpy 2, so it is installed without its pins
# beside the other dependencies (pip install '.[nuscenes]' in a fresh venv resolves numpy 1.26 instead)
NUSCENES_DEPS := 'pyquaternion>=0.9.5' 'shapely>=2.0.4' 'opencv-python-headless>=4.10' scikit-learn scipy \
	descartes fire cachetools tqdm parameterized 'pycocotools>=2.0.1'

.PHONY: run test venv chromium bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test,hf,prm]'
	$(BIN)/python -m pip install -q --disable-pip-version-check $(NUSCENES_DEPS)
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps 'nuscenes-devkit>=1.2'
	touch $(STAMP)

venv: $(STAMP)

# Headless Chromium drives the report test; Debian's package, installed when missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: $(STAMP)
	$(BIN)/drivechain demo --out demo

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/eval_throughput.py
	$(BIN)/python bench/closedloop.py

clean:
	rm -rf $(VENV) demo
