# make run   - the whole panel on this machine (private Redis and nginx by default)
# make test  - unit and end-to-end tests
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.requirements-installed
PYTEST_ARGS ?= -n auto
# The unit tests that reach the database run a second time on PostgreSQL (CERTPANEL_TEST_POSTGRES=off
# to skip; tests/conftest.py deselects the others there, CERTPANEL_TEST_EVERYTHING_ON_POSTGRES=1 keeps them).
CERTPANEL_TEST_POSTGRES ?= postgres://postgres@127.0.0.1:5432/certpanel

.PHONY: venv system-deps run test clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

system-deps:
	scripts/install-system-deps

run: system-deps venv
	$(VENV)/bin/python manage.py runpanel

test: system-deps venv
	if [ -d locale ]; then $(VENV)/bin/python manage.py compilemessages -i $(VENV) -i data; fi
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)
	if [ "$(CERTPANEL_TEST_POSTGRES)" != off ]; then \
	  DATABASE_URL=$(CERTPANEL_TEST_POSTGRES) $(VENV)/bin/python -m pytest $(PYTEST_ARGS) -m "not e2e"; fi

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
