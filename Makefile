# Two commands matter: `make run` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto')
GEN    := services/api/.generated
BROWSER := $(VENV)/.browser

.PHONY: run test test-containers containers setup gen lint typecheck buflint check bench clean

run: setup
	$(BIN)/antifraud up

# The venv's tools (hadolint, docker-compose, kubernetes-validate, buf) go first on PATH.
test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest $(PYTEST_ARGS)

# The suite in containers (podman, no Docker engine needed): installs podman where missing,
# makes the base images if no registry answers, builds deploy/Dockerfile, runs every CLI
# command in the image, then deploy/compose.yaml with the system and fault tests against it.
test-containers: setup
	bash scripts/container_setup.sh
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m tests.containers.run $(CONTAINER_ARGS)

# Only the images: base images and deploy/Dockerfile.
containers: setup
	bash scripts/container_setup.sh
	PATH="$(CURDIR)/$(BIN):$$PATH" DEPLOY_IMAGE=$${DEPLOY_IMAGE:-antifraud:dev} \
		$(BIN)/python -m tests.containers.run --skip-image-tests --skip-system-tests

setup: $(STAMP) $(GEN) $(BROWSER)

# Debian's chromium and a CJK font for the console's browser tests (skipped, saying why,
# where they cannot be installed).
$(BROWSER): scripts/browser_setup.sh
	bash scripts/browser_setup.sh
	@if [ -x /usr/bin/chromium ]; then mkdir -p $(VENV) && touch $@; fi

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(GEN): $(STAMP) $(PROTOS) scripts/gen_protos.py
	$(BIN)/python scripts/gen_protos.py
	touch $@

gen: $(STAMP)
	$(BIN)/python scripts/gen_protos.py && touch $(GEN)

lint: setup buflint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

buflint: $(STAMP)
	cd protos && ../$(BIN)/buf lint

typecheck: setup
	$(BIN)/mypy services gateway scripts bench tests

check: lint typecheck test

bench: setup
	@command -v h2load >/dev/null || apt-get install -y -q nghttp2-client || \
		{ apt-get update -q && apt-get install -y -q nghttp2-client; }
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) services/api var .mypy_cache .ruff_cache .pytest_cache
