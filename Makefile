# The two commands a user needs: `make demo` and `make test`. Both create .venv when it is
# missing and install the project into it; the install is redone only when pyproject.toml
# changes (the stamp file records the last install).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: test demo install browser clean-demo

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev,pose]'
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps mediapipe==0.10.21
	@touch $(STAMP)

# Headless Chromium + chromedriver for the notebook browser test (Debian packages, needs root).
browser:
	@bash .ci/install_browser.sh

# The precision-sensitive tests run twice: with the CPU's own kernels (AMX where present) and
# capped at AVX2, so a result that depends on which kernels the CPU picks fails on any machine.
test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	ONEDNN_MAX_CPU_ISA=AVX2 $(BIN)/python -m pytest -m precision -p no:cacheprovider tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/streid demo

clean-demo:
	$(BIN)/streid demo --fresh
