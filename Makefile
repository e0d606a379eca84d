# The two commands a fresh Debian machine needs:
#   make demo   the end-to-end demo on embedded defaults (Ctrl-C stops it)
#   make test   the whole test suite against real servers
VENV ?= .venv
DURATION ?=
DEMO_ARGS ?=

.PHONY: demo test lint bench setup-demo setup-test clean messages

setup-demo:
	@scripts/setup.sh demo

setup-test:
	@scripts/setup.sh test

demo: setup-demo
	$(VENV)/bin/ironwatch demo $(if $(DURATION),--duration $(DURATION),) $(DEMO_ARGS)

test: setup-test
	$(VENV)/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The dashboard's messages: extract every _() / N_() string and add the new ones, untranslated,
# to the Chinese catalogue (docs/dashboard.md, "Adding a translation"). Nothing to compile:
# the .po files are read at start.
messages:
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ --no-location --sort-output -o messages.pot .
	$(VENV)/bin/pybabel update -i messages.pot -d cloud/dashboard/locale -D dashboard -l zh_CN --ignore-obsolete --width 100
	rm -f messages.pot

clean:
	rm -rf $(VENV) ironwatch-data .pytest_cache .mypy_cache .ruff_cache
