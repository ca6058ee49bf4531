# The verbs people type. Every target sets itself up: a virtual environment in .venv with everything
# from requirements-dev.txt, the Lambda's platform wheels, and the pinned CDK CLI where it is needed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WHEELS_STAMP := $(VENV)/lambda-wheels/.downloaded
NODE_STAMP := node_modules/.installed
CHROMIUM := /usr/bin/chromium
JPEGTRAN := /usr/bin/jpegtran
ARGS ?=
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install test test-fast lint bytecode demo synth deploy bench fault-run clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt lambdas/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --editable .  # the `inferctl` command
	touch $@

$(WHEELS_STAMP): $(STAMP) lambdas/requirements.txt stacks/bundling.py
	rm -rf $(VENV)/lambda-wheels
	$(PY) -m stacks.bundling
	touch $@

$(NODE_STAMP): package.json
	@command -v npm >/dev/null || { echo "installing Debian's nodejs and npm for the CDK CLI"; \
	$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	npm install --no-audit --no-fund --silent
	touch $@

# Debian packages the tests use: Chromium for the report's browser test (Playwright drives it; nothing downloads a
# browser), libjpeg-turbo's jpegtran for the progressive and multi-scan JPEGs of the decode-memory corpus.
$(CHROMIUM):
	@echo "installing Debian's chromium package for the browser test"
	@$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null

$(JPEGTRAN):
	@echo "installing Debian's libjpeg-turbo-progs (jpegtran) for the decode-memory corpus"
	@$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq libjpeg-turbo-progs >/dev/null

install: $(STAMP) $(WHEELS_STAMP) $(NODE_STAMP) ## .venv with every dependency, `inferctl`, and the pinned CDK CLI

lint: $(STAMP) ## ruff (lint + format check) and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: $(STAMP) $(WHEELS_STAMP) $(NODE_STAMP) $(CHROMIUM) $(JPEGTRAN) lint bytecode ## lint, type-check and run every test
	$(VENV)/bin/pytest $(ARGS)

# The project's modules compiled, as pip compiles the packages it installs: many tests start a fresh interpreter (a
# command, the function as Lambda runs it), which otherwise compiles every module it imports each time where
# PYTHONDONTWRITEBYTECODE is set or the checkout is read-only. Up-to-date files are skipped; the Lambda asset never
# holds these (stacks/function.py excludes __pycache__).
bytecode: $(STAMP)
	@$(PY) -m compileall -q -j 0 app.py lambdas inferctl stacks benchmarks tests

test-fast: $(STAMP) ## unit tests only
	$(VENV)/bin/pytest tests/unit $(ARGS)

demo: $(STAMP) ## run the whole pipeline on an embedded AWS emulator (IMAGES=folder for your own)
	$(PY) -m inferctl demo $(if $(IMAGES),--images "$(IMAGES)") $(ARGS)

synth: $(STAMP) $(WHEELS_STAMP) ## write cdk.out/ offline (bundles the Lambda without Docker)
	CDK_OUTDIR=cdk.out $(PY) app.py
	@echo "cdk.out/ written: $$(ls cdk.out/*.template.json)"

deploy: $(STAMP) $(WHEELS_STAMP) $(NODE_STAMP) ## npx cdk deploy (pass context with ARGS="-c backend=...")
	npx cdk deploy $(ARGS)

fault-run: $(STAMP) ## the fault-injected end-to-end run at full size (300 images; IMAGES_COUNT=n to change)
	$(PY) -m inferctl fault-run --images $(or $(IMAGES_COUNT),300) $(ARGS)

bench: $(STAMP) ## measure cold start, overhead, concurrency, memory, throughput, package size
	$(PY) -m benchmarks $(ARGS)

clean: ## remove generated files (keeps .venv)
	rm -rf cdk.out out .pytest_cache .mypy_cache .ruff_cache
