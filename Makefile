# buzon — set-up and the everyday commands. Run as root on a fresh Debian machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test files run side by side: most of a test's time is spent waiting for a daemon, a
# Dovecot or a relay, so three workers keep two cores busy.
TEST_WORKERS ?= 3

# Every Python package at the version pinned, with its hashes, in requirements.lock
# (pip-compile of pyproject.toml's dependencies, the dev extra and the build backend).
LOCK := requirements.lock
LOCK_TOOLS := .venv-lock
COMPILE = $(LOCK_TOOLS)/bin/pip-compile --quiet --extra dev --build-deps-for editable \
	--allow-unsafe --generate-hashes --strip-extras --no-emit-index-url \
	--no-emit-find-links --output-file $(LOCK) pyproject.toml

.PHONY: setup demo test test-servers lint bench soak clean lock upgrade

# Installed from the lock only (--require-hashes: nothing unpinned, nothing altered),
# then buzon itself, editable, built by the pinned setuptools.
$(STAMP): pyproject.toml $(LOCK) scripts/install-system-packages.sh
	./scripts/install-system-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

## The lock file. `make lock` after changing the dependencies in pyproject.toml: what
## changed is resolved, every other pin is kept. `make upgrade` moves every package to
## its newest version that pyproject.toml allows; `make upgrade PACKAGE=scikit-learn`
## only that one (and what it needs). Then `make test`, and commit requirements.lock.
$(LOCK_TOOLS)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet pip-tools

lock: $(LOCK_TOOLS)/bin/pip-compile
	$(COMPILE)

upgrade: $(LOCK_TOOLS)/bin/pip-compile
	$(COMPILE) $(if $(PACKAGE),--upgrade-package $(PACKAGE),--upgrade)

## The demo: the whole daemon on a throwaway local Dovecot and SMTP sink.
demo: setup
	$(BIN)/buzon demo

## The tests (with lint first): real Dovecot, real SMTP, SQLite and PostgreSQL, and a
## real Cyrus and Courier (tests/servers, unpacked from Debian's packages: they conflict
## with Dovecot as packages); then the flow tests again with Dovecot's folders under
## "INBOX." and '.' (Courier's and Cyrus's layout).
test: setup lint
	./scripts/extract-imap-servers.sh
	@# Both runs share one trained model (tests/conftest.py: trained_model), trained anew.
	rm -rf .test-model
	BUZON_TEST_MODEL_DIR=$(CURDIR)/.test-model $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile
	BUZON_TEST_LAYOUT=inbox BUZON_TEST_MODEL_DIR=$(CURDIR)/.test-model \
	  $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile tests/flows

## buzon end to end on a real Cyrus and a real Courier, unpacked from Debian's packages
## (they conflict with Dovecot as packages); as root.
test-servers: setup
	./scripts/extract-imap-servers.sh
	$(BIN)/pytest -q tests/servers

lint: setup
	$(BIN)/ruff check daemon classifiers tests benchmarks
	$(BIN)/lint-imports

## The long proofs: 2,000 mails under SIGKILLs, Dovecot restarts and the relay away,
## then the bad-input run with 5,000 generated mails per property.
soak: setup
	$(BIN)/python benchmarks/soak.py
	HYPOTHESIS_PROFILE=soak $(BIN)/pytest -q tests/mail/test_bad_input.py

## Backlog triage benchmark (N mails, default 5000) beside the server's raw floor.
bench: setup
	$(BIN)/python benchmarks/backlog.py $(if $(N),--mails $(N),)

clean:
	rm -rf $(VENV) $(LOCK_TOOLS) .pytest_cache .ruff_cache
