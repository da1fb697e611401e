# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The CPU build of torch; an unpinned torch would pull a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
EXTRAS ?= tests,atari,box2d,mujoco,export,zoo,ray,multiagent

.PHONY: venv install demo test test-all check-results lint format type clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(TORCH_PIN)"
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m sb3_equivariant.benchmark --preset demo

test: install
	$(PY) -m pytest -q -m "not slow" -n 2 tests

test-all: install
	$(PY) -m pytest -q -n 2 tests

# Recompute every committed summary under results/ from its curves and compare (a few CPU-minutes).
check-results: install
	$(PY) benchmarks/check_results.py

lint: install
	$(PY) -m ruff check sb3_equivariant tests examples benchmarks zoo_configs
	$(PY) -m mypy

format: install
	$(PY) -m ruff format sb3_equivariant tests examples benchmarks zoo_configs
	$(PY) -m ruff check --fix sb3_equivariant tests examples benchmarks zoo_configs

clean:
	rm -rf $(VENV) build *.egg-info
