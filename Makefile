# Two commands set up a fresh machine: `make run` (the bot's brain on embedded defaults) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test lint bench install

$(BIN)/oncall: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/oncall

install: $(BIN)/oncall

run: install
	$(BIN)/oncall predict --service checkout "checkout is throwing 500s for everyone since the 14:05 deploy"
	$(BIN)/oncall doctor

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/quality.py
