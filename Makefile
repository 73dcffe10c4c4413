# The workbook's commands. `make help` lists them.
PROFILE ?= quick
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# onnxruntime-gpu on machines with a working NVIDIA driver, onnxruntime elsewhere (never both)
ORT_EXTRA := $(shell nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
STAMP := $(VENV)/.installed-$(ORT_EXTRA)
KERNEL := inference-workbook

.DEFAULT_GOAL := help
NAME ?=
.PHONY: help install study reference test lint lab lock clean clean-cache

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'
	@echo "  PROFILE=smoke|quick|full selects the study profile (default: quick)"

install: $(STAMP) ## create .venv and install the pinned stack and the project kernel

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(ORT_EXTRA),test]"
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Inference workbook"
	rm -f $(VENV)/.installed-*
	touch $@

study: install ## run every notebook headless with PROFILE (results/, figures/, runs/PROFILE/)
	$(PY) -m helpers.study run --profile $(PROFILE)

reference: install ## write a committed reference run, in parts: make reference NAME=epyc-zen4-2c-full PROFILE=full [ONLY=03,05] [REPLACE=1]
	@test -n "$(NAME)" || { echo "make reference: give NAME=<machine>-<profile>, e.g. NAME=epyc-zen4-2c-full"; exit 2; }
	$(PY) -m helpers.study run --profile $(PROFILE) --reference $(NAME) $(if $(ONLY),--only $(ONLY)) $(if $(REPLACE),--replace)

# Tests: one process per file, files in collection order (the smoke study first, alone on its
# worker while the other takes the rest), not xdist's default order of most tests first.
test: lint ## lint, then the test suite (unit tests + every notebook with the smoke profile)
	$(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder

lint: install ## ruff: lint and format check of src/, tests/ and notebooks/
	$(VENV)/bin/ruff check src tests notebooks
	$(VENV)/bin/ruff format --check src tests notebooks

lab: install ## open JupyterLab on the notebooks with the project kernel
	$(VENV)/bin/jupyter lab notebooks/

lock: install ## rewrite constraints.txt from the installed environment
	{ sed -n '1,3p' constraints.txt; $(PY) -m pip freeze --exclude-editable | sed 's/+cpu//'; \
	  echo "onnxruntime-gpu==1.31.1"; echo "nvidia-ml-py==13.615.71"; } | awk '!seen[$$0]++' > constraints.new
	mv constraints.new constraints.txt

clean: ## remove runs/, archived runs included (keeps your current results/, figures/ and the build cache)
	rm -rf runs

clean-cache: ## empty the build cache of exported and quantized model files (cache/, or $WORKBOOK_CACHE)
	PYTHONPATH=src $(PYTHON) -m helpers.backends.cache clear
