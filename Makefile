.PHONY: setup up test check docs

VENV := .venv
STAMP := $(VENV)/.setup-stamp
PACKAGES := contracts servicekit agent runtime gateway sandbox_svc warmpool_svc exec_svc audit_svc devstack sdk

setup: $(STAMP)

$(STAMP): scripts/setup.sh pyproject.toml $(wildcard uv.lock) $(wildcard */pyproject.toml) $(wildcard */*/pyproject.toml)
	bash scripts/setup.sh
	touch $(STAMP)

up: setup
	$(VENV)/bin/python -m llmsafespace.devstack up

test: setup
	$(VENV)/bin/pytest

check: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(addprefix -p llmsafespace.,$(PACKAGES))

docs: setup
	$(VENV)/bin/python scripts/asyncapi.py docs/asyncapi.json
