# Two commands set up a fresh machine: `make run` (the bot on embedded defaults: SQLite, the built-in model,
# the local Slack emulator when no Slack tokens are set) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test lint bench install

$(BIN)/oncall: pyproject.toml engine/_native.c  # the C extension is built by the (editable) install
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/oncall

install: $(BIN)/oncall

run: install
	$(BIN)/oncall serve

test: install
	$(BIN)/python -m pytest -q -n 2  # two workers (pytest-xdist): most tests wait on servers and timers

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/e2e.py
	$(BIN)/python bench/storm.py
	$(BIN)/python bench/similar.py
