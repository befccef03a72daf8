# optbot — the two commands a new user needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Prefect runs on its local temporary API: no account, no network, no telemetry.
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

.PHONY: install test demo lint format serve clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

test: install
	$(BIN)/python -m pytest

demo: install
	$(BIN)/optbot demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy market

# A local Prefect server on 127.0.0.1:4200 with every deployment of prefect.yaml and a process
# worker, so the schedules show in the Prefect UI. Ctrl-C stops the worker;
# `.venv/bin/prefect server stop` stops the server.
PREFECT_LOCAL_API := http://127.0.0.1:4200/api
serve: install
	$(BIN)/prefect server start --host 127.0.0.1 --background
	PREFECT_API_URL=$(PREFECT_LOCAL_API) $(BIN)/prefect work-pool create optbot-process --type process --overwrite
	PREFECT_API_URL=$(PREFECT_LOCAL_API) $(BIN)/prefect --no-prompt deploy --all
	PREFECT_API_URL=$(PREFECT_LOCAL_API) $(BIN)/prefect worker start --pool optbot-process

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
