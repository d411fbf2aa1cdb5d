# buzon — set-up and the everyday commands. Run as root on a fresh Debian machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Test files run side by side: most of a test's time is spent waiting for a daemon, a
# Dovecot or a relay, so three workers keep two cores busy.
TEST_WORKERS ?= 3

.PHONY: setup demo test test-servers lint bench soak clean

$(STAMP): pyproject.toml scripts/install-system-packages.sh
	./scripts/install-system-packages.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## The demo: the whole daemon on a throwaway local Dovecot and SMTP sink.
demo: setup
	$(BIN)/buzon demo

## The tests (with lint first): real Dovecot, real SMTP, SQLite and PostgreSQL, and a
## real Cyrus and Courier (tests/servers, unpacked from Debian's packages: they conflict
## with Dovecot as packages); then the flow tests again with Dovecot's folders under
## "INBOX." and '.' (Courier's and Cyrus's layout).
test: setup lint
	./scripts/extract-imap-servers.sh
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile
	BUZON_TEST_LAYOUT=inbox $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile tests/flows

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
	rm -rf $(VENV) .pytest_cache .ruff_cache
