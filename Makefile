# Earshot: the two commands are `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SYSTEM_PACKAGES := espeak-ng sox chromium chromium-driver

.PHONY: demo test venv venv-test system-deps lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=24" "setuptools<81" wheel

venv: $(BIN)/python
	$(BIN)/pip install -q -e .

venv-test: $(BIN)/python
	$(BIN)/pip install -q -e ".[test]"

# Debian packages the tests need (speech synthesis for test audio, a real browser).
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian packages:$$missing"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: venv
	$(BIN)/earshot demo

test: system-deps venv-test
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest --cov --cov-report=term $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: venv-test
	$(BIN)/ruff check src tests bench

bench: venv-test
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) earshot-data .pytest_cache .coverage
