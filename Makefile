# Every target bootstraps .venv first, so a fresh machine needs nothing installed by hand.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint browser bench clean fuzz

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The worked example (a wide 5x5 conv CA101 flags) beside an Inception block that already has its
# 1x1 reductions. --fail-on never: the demo shows findings, it does not fail on them.
demo: $(STAMP)
	$(BIN)/convaudit scan sample_models/textbook_5x5.onnx sample_models/inception_block.onnx --fail-on never

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The HTML report test renders the page in headless Chromium: install Debian's package where we can
# (root with apt-get, as on CI and a fresh machine); elsewhere say in one line what to install.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the HTML report test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: apt-get could not install chromium; the HTML browser test will fail"; \
	  else \
	    echo "the HTML browser test needs Chromium: run 'sudo apt-get install chromium' (Debian/Ubuntu) or put a chromium binary on PATH"; \
	  fi; }

test: lint browser
	$(BIN)/python -m pytest -q

# A longer fuzz campaign (issue 10): the suite's Hypothesis properties with FUZZ_EXAMPLES each,
# then the CLI on mutated models, rules, configs and baselines in child processes capped at 4 GiB
# and 30 s a case, for FUZZ_SECONDS. Failing cases are kept under fuzz-failures/.
# FUZZ_SEED / FUZZ_CASES fix the case sequence (CI); by default every run draws new cases.
FUZZ_SECONDS ?= 300
FUZZ_EXAMPLES ?= 300
FUZZ_SEED ?=
FUZZ_CASES ?=
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz/test_fuzz_properties.py
	$(BIN)/python tests/fuzz/campaign.py --seconds $(FUZZ_SECONDS) --out fuzz-failures \
	  $(if $(FUZZ_SEED),--seed $(FUZZ_SEED)) $(if $(FUZZ_CASES),--cases $(FUZZ_CASES))

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_scan.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
