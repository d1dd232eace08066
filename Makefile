# The two set-up commands of the README: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-dev system-deps test-deps lint unit clean

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

# Java 17 and Maven run the local Kafka broker; install them when missing and we may.
system-deps:
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven; \
	  else echo "Java 17 and Maven are needed: install them" >&2; exit 1; fi; fi

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

install: system-deps $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: system-deps $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
