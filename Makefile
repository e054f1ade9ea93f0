.PHONY: setup up test check docs bench soak

VENV := .venv
STAMP := $(VENV)/.setup-stamp
PACKAGES := contracts servicekit agent runtime gateway sandbox_svc warmpool_svc exec_svc audit_svc devstack sdk

setup: $(STAMP)

$(STAMP): scripts/setup.sh pyproject.toml $(wildcard uv.lock) $(wildcard */pyproject.toml) $(wildcard */*/pyproject.toml)
	bash scripts/setup.sh
	touch $(STAMP)

up: setup
	$(VENV)/bin/python -m llmsafespace.devstack up

# The whole suite, then the end-to-end suite once more on the other backend: sandboxes as
# Pods through the Kubernetes driver (a fake cluster running real agents) and every
# service as two processes.
test: setup
	$(VENV)/bin/pytest
	LLMSAFESPACE_TEST_DRIVER=kubernetes LLMSAFESPACE_REPLICAS=2 $(VENV)/bin/pytest tests/e2e

check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(addprefix -p llmsafespace.,$(PACKAGES))

docs: setup
	$(VENV)/bin/python scripts/asyncapi.py docs/asyncapi.json

# Every benchmark against its own embedded stack, side by side with a Jupyter Kernel
# Gateway; prints the table and writes bench/results/. BENCH_ARGS: e.g. --quick, --no-peer.
bench: setup
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)

# 100 streaming WebSocket clients plus sandbox churn for DURATION seconds, then leak checks
# (exits non-zero on a leak). Not part of `make test`.
DURATION ?= 300
soak: setup
	$(VENV)/bin/python bench/soak.py --duration $(DURATION) $(SOAK_ARGS)
