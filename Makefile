# The two set-up commands of the README: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev system-deps test-deps assets lint unit clean

demo: install
	$(BIN)/rectrack demo

test: install-dev test-deps lint
	$(BIN)/pytest -q tests

lint:
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install-dev
	$(BIN)/pytest -q tests/unit

# Java 17 and Maven run the local Kafka broker; node and npm build the pages' assets. Install
# them when missing and we may.
system-deps:
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven; \
	  else echo "Java 17 and Maven are needed: install them" >&2; exit 1; fi; fi
	@if ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq nodejs npm; \
	  else echo "node and npm are needed to build the pages' assets: install them" >&2; exit 1; fi; fi

# The pages' stylesheet (GOV.UK Frontend, compiled with our settings), its images and the API
# page's Swagger UI, built from the npm packages pinned in package-lock.json into
# services/web/static/ (not committed); axe-core for the browser tests comes with them.
ASSETS := services/web/static/rectrack.css
ASSET_SOURCES := $(wildcard services/web/assets/*)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

$(ASSETS): node_modules/.package-lock.json $(ASSET_SOURCES)
	npm run --silent build

assets: system-deps $(ASSETS)

# docker-compose (Debian's 1.29) only parses docker-compose.yml in the tests; nothing runs it.
# Chromium is the browser Playwright drives in the dashboard tests.
test-deps:
	@if ! command -v docker-compose >/dev/null || ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq docker-compose chromium; \
	  else echo "docker-compose and chromium are needed by the tests: install them" >&2; exit 1; fi; fi

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: system-deps $(BIN)/python assets
	$(BIN)/pip install -q -e .

install-dev: system-deps $(BIN)/python assets
	$(BIN)/pip install -q -e '.[dev]'

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts node_modules services/web/static
