# Two commands set up a fresh machine: `make run` (the bot on embedded defaults: SQLite, the built-in model,
# the local Slack emulator when no Slack tokens are set) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

# setuptools warns on every build that `[tool.setuptools.ext-modules]` (how pyproject.toml declares the C
# extension, with no setup.py) is "still *experimental*" (three times, through its latest release), and an
# editable install ends with its "Editable installation" banner: noise for whoever runs `make`. These two
# messages alone are silenced, by the exact start of their text; errors, a failed C build and every other
# warning still show. tests/integration/test_install.py checks it.
QUIET_BUILD = PYTHONWARNINGS='ignore:`[tool.setuptools.ext-modules]` in `pyproject.toml` is still *experimental*,ignore:Editable installation.'

.PHONY: run test test-fast lint bench install

$(BIN)/oncall: pyproject.toml engine/_native.c  # the C extension is built by the (editable) install
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(QUIET_BUILD) $(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/oncall

install: $(BIN)/oncall

run: install
	$(BIN)/oncall serve

test: install
	$(BIN)/python -m pytest -q -n 2  # two workers (pytest-xdist): most tests wait on servers and timers

# The loop to run while working: no slow, e2e, PostgreSQL or browser test (markers in pyproject.toml),
# under a minute on two cores. `make test` runs them all.
test-fast: install
	$(BIN)/python -m pytest -q -n 2 -m "not slow and not e2e and not postgres and not browser"

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/e2e.py
	$(BIN)/python bench/storm.py
	$(BIN)/python bench/similar.py
