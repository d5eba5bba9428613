# Tokengrid: `make demo` runs it, `make test` tests it. Both need only Python 3.11: without
# DATABASE_URL they run on the embedded PostgreSQL in var/postgres/ (config/embedded_db), which the
# first connection starts; `make db-stop` stops it.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint install lock serve worker beat clean db-stop

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Tokengrid needs $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Pin every dependency again from pyproject.toml (uv is only needed here, not to install).
lock:
	test -x $(VENV)/bin/uv || $(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	  --no-header --quiet -o requirements.lock.new
	{ sed -n 1,2p requirements.lock; cat requirements.lock.new; } > requirements.lock.tmp && rm requirements.lock.new
	mv requirements.lock.tmp requirements.lock

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	CELERY_FILESYSTEM_DIR=var/test-broker $(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

# The development targets run with DEBUG on; the settings default to production (DJANGO_DEBUG unset).
demo test worker beat serve: export DJANGO_DEBUG ?= 1

worker: $(STAMP)
	$(VENV)/bin/celery -A config worker -Q ingest,rollups,reports,billing,default --loglevel=INFO

beat: $(STAMP)
	$(VENV)/bin/celery -A config beat --schedule var/celerybeat-schedule --loglevel=INFO

serve: $(STAMP)
	$(PY) manage.py runserver 127.0.0.1:8000

clean:
	rm -rf var/broker var/ingest var/ingest-store

# The embedded PostgreSQL keeps running for the next command (the demo and the test session stop
# the one they started); this stops it. `make db-stop && rm -rf var/postgres` deletes its data.
db-stop: $(STAMP)
	$(PY) -m config.embedded_db stop
