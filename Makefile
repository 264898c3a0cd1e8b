# fin-ia — the front door. `make demo` and `make test` work on a fresh clone, offline but for the package index.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# A CPU build of torch goes in first: a plain torch requirement on a machine without torch would pull several GB of
# CUDA wheels. On the development and CI machines this exact version is served from a local wheel. Override on
# other machines, e.g. `make TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu" test`.
TORCH_SPEC ?= torch==2.13.0
# torchcfm (OT-CFM matcher, Tong et al. 2023) without its dependencies: it pins torchdyn, which pulls torchvision (a
# CUDA torch build of several GB), Jupyter and poethepoet, none of which the matcher imports. What it does import
# (torch, numpy, scipy, POT, torchdiffeq) is in pyproject.toml.
TORCHCFM_SPEC ?= torchcfm==1.0.7
export DAGSTER_HOME := $(CURDIR)/dagster_home

.PHONY: install instance demo test ui mlflow bench clean-state

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps $(TORCHCFM_SPEC)
	touch $(STAMP)

install: $(STAMP)

# Create and migrate the sqlite instance under DAGSTER_HOME once, before anything opens it concurrently (the
# webserver and the daemon of `make ui`, step processes): two processes creating a fresh instance at the same time
# can leave it unopenable ("alembic_version has more than one head", #16). Opening an existing one is a no-op.
instance: install
	$(BIN)/python -c "import dagster; dagster.DagsterInstance.get().dispose()"

demo: install instance
	$(BIN)/fin-ia demo

test: install instance
	$(BIN)/python -m pytest

ui: install instance
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# MLflow UI on the same store the pipeline writes (runs, registered models, lineage tags).
mlflow: install
	mkdir -p .fin_ia/mlflow
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.fin_ia/mlflow/mlflow.db -h 127.0.0.1 -p 5000

bench: install
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python -m benchmarks.run

# Forget the embedded default state (Dagster runs, stored parquet); the code and dagster.yaml stay.
clean-state:
	find dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
	rm -rf .fin_ia
