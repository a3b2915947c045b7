# The README's two commands are `make run` and `make test`; each bootstraps .venv/ first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY := true

.PHONY: run test serve app viz graph lint format lock bench clean dags airflow-lock

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is required (found $$($(PYTHON) --version)); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	@touch $@

## Airflow 3 in a virtualenv of its own (.venv-airflow): its pins clash with the project's (e.g.
## FastAPI < 0.137), so DAG tasks run the project in .venv (docs/airflow.md). The tests use it to
## import and run the generated DAGs; airflow/requirements.lock pins it (make airflow-lock).
AIRFLOW_VERSION := 3.3.2
# The providers compose's Airflow uses (Celery executor, FAB users, PostgreSQL metadata). Celery
# 5.7 removed what the Celery provider imports (celery.backends.database.retry).
AIRFLOW_REQUIREMENTS := 'apache-airflow[celery,fab,postgres]==$(AIRFLOW_VERSION)' 'celery<5.7'
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
$(AIRFLOW_STAMP): airflow/requirements.lock
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -r airflow/requirements.lock
	@touch $@

airflow-lock:
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet $(AIRFLOW_REQUIREMENTS)
	{ echo "# Airflow's own virtualenv (make test, docs/airflow.md); regenerate with 'make airflow-lock'."; \
	  $(AIRFLOW_VENV)/bin/python -m pip freeze --all | grep -vE '^(pip|setuptools|wheel)=='; \
	} > airflow/requirements.lock
	@touch $(AIRFLOW_STAMP)

## make dags — regenerate airflow/dags/ (and airflow/pools.json) from the registered pipelines
## and conf/{base,prod}/airflow.yml; a test fails while the committed DAGs are out of date.
dags: $(STAMP)
	$(BIN)/python airflow/generate.py --env prod

## make run — `kedro run` on the embedded default (SQLite under data/, no servers, no keys).
## ARXIV_SNAPSHOT=<file> backfills from a snapshot instead of the live API.
run: $(STAMP)
	$(BIN)/kedro run $(ARGS)

## make test — the whole suite (needs PostgreSQL on 127.0.0.1:5432; see README). The UI tests
## drive Debian's chromium, installed here when missing (never a browser download by a test tool).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
test: $(STAMP) $(AIRFLOW_STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }

## make serve — the REST API on http://127.0.0.1:8500 (docs/api.md), over the stores of KEDRO_ENV.
serve: $(STAMP)
	$(BIN)/uvicorn serving.main:app --host 127.0.0.1 --port 8500 $(ARGS)

## make app — the Streamlit UI on http://127.0.0.1:8501, talking to the API at API_URL.
app: $(STAMP)
	$(BIN)/streamlit run app/main.py --server.port 8501 --server.headless true \
		--browser.gatherUsageStats false --client.toolbarMode viewer $(ARGS)

## make viz — kedro-viz on http://127.0.0.1:4141: every pipeline, its nodes and datasets.
viz: $(STAMP)
	$(BIN)/kedro viz run --host 127.0.0.1 --port 4141 --no-browser $(ARGS)

## make graph — docs/pipeline-graph.png (the README's picture) from `kedro viz build`.
graph: $(STAMP) $(CHROMIUM)
	$(BIN)/python tools/pipeline_graph.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## make lock — pin the current environment after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	{ echo "# Exact versions for reproducible installs: pip install -c requirements.lock -e '.[dev]'"; \
	  echo "# Regenerate with 'make lock' after changing dependencies in pyproject.toml."; \
	  $(BIN)/python -m pip freeze --exclude-editable --all | grep -vE '^(arxiv_kedro|pip|setuptools|wheel)=='; \
	} > requirements.lock

## make bench — every benchmark under bench/ (or one: make bench BENCH=classifier); results go to
## docs/benchmarks.md, one section per script.
BENCH ?= ingestion classifier classifier_sweep summarization api image library monitoring
bench: $(STAMP)
	for b in $(BENCH); do $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) $(AIRFLOW_VENV) .pytest_cache .ruff_cache
