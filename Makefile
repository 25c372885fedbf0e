# vodflow — the two commands are `make demo` and `make test`. Everything else is what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VIDEO ?=
STAMP := $(VENV)/.installed

help:
	@echo "make demo [VIDEO=path]  run the pipeline end to end on this machine; output in demo-output/"
	@echo "make test               lint + unit, integration and end-to-end tests"
	@echo "make stack [WORKERS=n]   Airflow on Celery without Docker (this machine's Postgres and Redis)"
	@echo "make soak               20 videos at once on the Celery stack; prints wall time and ratios"
	@echo "make venv | ffmpeg | browser | lint | unit | lock | clean"

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "vodflow needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

venv: $(STAMP)

# Installing prints one line per step; apt-get's and npm's own output goes to INSTALL_LOG (not .demo/, which the
# demo empties when it starts), and a failed step prints the log's last lines.
INSTALL_LOG ?= artifacts/install.log
# $(call logged,<step>,<shell command>): the step's name, then "done" or its exit status and the log's tail.
logged = mkdir -p "$(dir $(INSTALL_LOG))"; printf '%s … ' "$(1)"; echo "== $$(date -u +%FT%TZ) $(1)" >>"$(INSTALL_LOG)"; \
	if ( $(2) ) >>"$(INSTALL_LOG)" 2>&1; then echo "done (log: $(INSTALL_LOG))"; \
	else status=$$?; echo "failed (exit $$status); the end of $(INSTALL_LOG):"; tail -n 25 "$(INSTALL_LOG)"; exit $$status; fi
SUDO_IF_NOT_ROOT = SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo )

# ffmpeg comes from the OS (Debian: apt-get install ffmpeg); so does espeak-ng, the speech the automatic captions'
# tests and bench recognise.
ffmpeg:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null && command -v espeak-ng >/dev/null || { \
		$(SUDO_IF_NOT_ROOT); $(call logged,ffmpeg: apt-get update,$$SUDO apt-get update); \
		$(call logged,ffmpeg: apt-get install ffmpeg espeak-ng,DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y ffmpeg espeak-ng); }

# The browser test drives Debian's Chromium with playwright-core from npm (never a downloaded browser).
BROWSER_DEPS := tests/browser/node_modules/.package-lock.json
browser: $(BROWSER_DEPS)
	@command -v chromium >/dev/null || { $(SUDO_IF_NOT_ROOT); \
		$(call logged,browser: apt-get update,$$SUDO apt-get update); \
		$(call logged,browser: apt-get install chromium,DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y chromium); }

$(BROWSER_DEPS): tests/browser/package.json tests/browser/package-lock.json
	@$(call logged,browser: npm ci in tests/browser,cd tests/browser && npm ci --no-audit --no-fund)

demo: venv ffmpeg
	$(VENV)/bin/vodflow demo $(if $(VIDEO),--video "$(VIDEO)")

# Options: POSTGRES=<metadata DB URL> CATALOG=<catalog DB URL> REDIS=<broker URL> WORKERS=<n> S3=<endpoint URL>
stack: venv ffmpeg
	$(VENV)/bin/vodflow stack $(if $(POSTGRES),--postgres "$(POSTGRES)") $(if $(CATALOG),--catalog "$(CATALOG)") \
		$(if $(REDIS),--redis "$(REDIS)") $(if $(WORKERS),--workers $(WORKERS)) $(if $(S3),--s3-endpoint "$(S3)")

# Not part of `make test`: 20 videos at once on the Celery stack (this machine's Postgres and Redis), ~10 min.
soak: venv ffmpeg
	$(PY) bench/load.py

lint: venv
	$(VENV)/bin/ruff check .

unit: venv
	$(VENV)/bin/pytest -q tests/unit

# The suite in two sessions side by side (tests/run.sh says why); `$(VENV)/bin/pytest tests` runs it in one.
test: venv ffmpeg browser lint
	PYTEST=$(VENV)/bin/pytest tests/run.sh

# Refresh the lock after changing requirements*.txt.
lock: venv
	{ head -2 constraints.txt; $(VENV)/bin/pip freeze --exclude-editable | grep -v '^vodflow'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf .demo .stack demo-output artifacts .pytest_cache .ruff_cache tests/browser/node_modules

.PHONY: soak help venv ffmpeg browser demo stack lint unit test lock clean
