# Two commands matter: `make run` and `make test`. Everything else is a step of theirs.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROTOS := $(shell find protos -name '*.proto')
GEN    := services/api/.generated
BROWSER := $(VENV)/.browser

.PHONY: run test test-containers containers setup gen lint typecheck buflint check bench clean lock \
	test-newest

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

# The unit tests on the newest Python pyproject allows (CI runs the rest on $(PYTHON)), in a
# venv of its own made from the same lock.
PYTHON_NEWEST ?= python3.13
VENV_NEWEST   := .venv-newest
test-newest: setup
	@$(PYTHON_NEWEST) -c pass 2>/dev/null || { echo "test-newest: $(PYTHON_NEWEST) does not run (pyenv: PYENV_VERSION=3.13.x)"; exit 2; }
	test -x $(VENV_NEWEST)/bin/python || $(PYTHON_NEWEST) -m venv $(VENV_NEWEST)
	$(VENV_NEWEST)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r requirements/dev.txt
	$(VENV_NEWEST)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	PATH="$(CURDIR)/$(VENV_NEWEST)/bin:$$PATH" $(VENV_NEWEST)/bin/pytest tests/unit $(PYTEST_ARGS)

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

# Exactly the locked versions, each checked against its hashes (requirements/dev.txt, made
# by `make lock`); then the project itself, its dependencies already there.
$(STAMP): pyproject.toml requirements/dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r requirements/dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# The lock files from pyproject.toml's pins, for every platform and every Python it allows:
# runtime.txt (the image), codegen.txt (grpcio-tools for the image's build, at the runtime's
# versions), dev.txt (make setup, CI). Run after changing a pin; commit all three.
UV_COMPILE := $(BIN)/uv pip compile --native-tls --universal --python-version 3.11 \
	--generate-hashes --quiet
lock: $(STAMP)
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.txt
	$(UV_COMPILE) pyproject.toml --extra dev -o requirements/dev.txt
	echo grpcio-tools | $(UV_COMPILE) - -c requirements/dev.txt -o requirements/codegen.txt

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
	rm -rf $(VENV) $(VENV_NEWEST) services/api var .mypy_cache .ruff_cache .pytest_cache
