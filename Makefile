# Two entry points: `make demo` and `make test`. Each sets up what it needs.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DATA ?= demo-data
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck layers unit browser-deps net-deps font-deps pg-deps fhir-examples clean

define make-venv
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	@# Debian's python3.11 lacks ensurepip until python3.11-venv is installed.
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-venv >/dev/null && \
	  $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
endef

$(STAMP): pyproject.toml
	$(make-venv)
	$(PY) -m pip install --quiet -e .
	touch $@

# The project and its test extras in one pip run, not the project and then again with
# them: each run resolves every dependency and builds the editable wheel anew.
$(TEST_STAMP): pyproject.toml
	$(make-venv)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP) $@

demo: $(STAMP) font-deps
	$(VENV)/bin/healthledger demo --data $(DATA) --port $(PORT)

browser-deps:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Chinese region names in the PNG figure exports (vl-convert) and in Chromium's
# screenshots need a CJK font.
font-deps:
	@fc-list 2>/dev/null | grep -q 'Noto Sans CJK' || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null; }

# The partition tests run NATS servers and peers in network namespaces (ip netns).
net-deps:
	@command -v ip >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null; }

# The ledger-store tests also run on a throw-away PostgreSQL server (tests/support/postgres.py).
pg-deps:
	@test -x /usr/lib/postgresql/15/bin/initdb || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; }

# Independent verifiers of the credentials the project issues (tests/apps/credentials).
NPM_PREFIX := $(VENV)/npm
NPM_STAMP := $(NPM_PREFIX)/.installed
NPM_PACKAGES := cose-js@0.9.0 jose@6.2.19 base45@3.0.0
$(NPM_STAMP): Makefile
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	mkdir -p $(NPM_PREFIX)
	npm install --silent --no-audit --no-fund --prefix $(NPM_PREFIX) $(NPM_PACKAGES)
	touch $@

npm-deps: $(NPM_STAMP)

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(TEST_STAMP)
	$(VENV)/bin/mypy --strict src

layers: $(TEST_STAMP)
	$(VENV)/bin/lint-imports

# The FHIR R4 specification's examples, which tests read from the installed npm package
# (pinned in tests/fhir_examples/package-lock.json), never from copies in the repository.
FHIR_EXAMPLES := tests/fhir_examples/node_modules/hl7.fhir.r4.examples/package.json
$(FHIR_EXAMPLES): tests/fhir_examples/package-lock.json
	@command -v npm >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; }
	npm ci --prefix tests/fhir_examples --no-audit --no-fund --loglevel=error
	touch $@

fhir-examples: $(FHIR_EXAMPLES)

# Compiled once before the run: the tests start many Python processes (peers, the CLI),
# and where PYTHONDONTWRITEBYTECODE is set each one compiled every module it imported
# again (0.35-0.5 s of CPU per peer, a fifth to a third of its import time).
unit: $(TEST_STAMP)
	$(PY) -m compileall -q src tests
	@# worksteal: a worker that runs out takes half of the other's queue, so neither
	@# idles at the end (--dist load left one idle for the last 4% of a run).
	$(PY) -m pytest -q -n 2 --dist worksteal --durations=60 tests

test: $(TEST_STAMP) browser-deps net-deps font-deps pg-deps fhir-examples npm-deps lint typecheck layers unit

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .mypy_cache .ruff_cache
