# The two commands of the README:  make demo  (the main job)  and  make test  (every test).
# Everything else they need (virtualenv, control plane, kwok, helm, kubectl, chromium) is installed
# on first use; see tests/cluster/localcluster.py.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Two workers: most of an integration test is waiting for the cluster. Tests of one file stay in
# one worker (they may share cluster-scoped objects).
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: setup demo test unit integration lint sanity bench up down clean

setup:
	@tests/cluster/env >/dev/null
	@bash tests/install-system-packages.sh

## make demo: bring up the local cluster, push an example app, change it, reconcile, heal drift.
demo: setup
	@bash demo/run.sh

## make test: unit, integration (real local control plane, ansible-lint included), then sanity.
test: setup
	$(PY) -m pytest $(PYTEST_ARGS) tests/unit tests/integration
	@$(MAKE) --no-print-directory sanity

unit:
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest $(PYTEST_ARGS) tests/integration

lint:
	@eval "$$(tests/cluster/env)" && ansible-lint --profile production roles playbooks

sanity:
	@bash tests/sanity.sh

bench: setup
	@eval "$$(tests/cluster/env)" && for b in tests/bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

up:
	@tests/cluster/up

down:
	@tests/cluster/down

clean: down
	rm -rf $(VENV) tests/artifacts
