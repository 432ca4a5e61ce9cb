# Every target installs what it needs first: a fresh clone needs only python3 (>=3.11) and npm.
SHELL := /bin/bash
.DEFAULT_GOAL := synth

PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# CDK Terrain (cdktn) in place of cdktf, for `make test-cdktn`.
VENV_CDKTN := .venv-cdktn
PY_CDKTN := $(VENV_CDKTN)/bin/python
# checkov, for the policy test, in its own venv: its dependencies would clash with the app's.
VENV_CHECKOV := .venv-checkov
PY_CHECKOV := $(VENV_CHECKOV)/bin/python
NODE_BIN := $(CURDIR)/node_modules/.bin
# jsii and the cdktf CLI run on the Node 22 pinned in package.json, not the system Node.
export JSII_NODE := $(NODE_BIN)/node
export PATH := $(NODE_BIN):$(PATH)
# No telemetry call-home from the cdktf CLI (it only fails loudly without network).
export CHECKPOINT_DISABLE := 1

ENV ?= dev

.PHONY: synth cdktf-synth test test-cdktn lint lint-workflows typecheck pytest snapshot-update bench \
        watch diagram run-function publish up down smoke replay-dead-letters clean install help \
        plan deploy destroy export-stack tfc-run lock

## help: list every target with what it does and its parameters (bare `make` runs synth)
help:
	@awk '/^## [a-z-]+:/ { sub(/^## /, ""); split($$0, p, ": "); \
		printf "  make %-16s %s\n", p[1], substr($$0, length(p[1]) + 3); next } \
		/^##   / { sub(/^##   /, ""); printf "  %-21s %s\n", "", $$0 }' $(MAKEFILE_LIST)

## install: create .venv and node_modules from the pinned files (every target does this first)
install: $(VENV)/.installed node_modules/.installed

# Python packages install from hash-locked files only (`make lock` writes them): pip checks
# every download against the lock's sha256 and refuses anything unlisted. The project itself
# (-e .) cannot be hashed: it follows with --no-deps, built by the locked setuptools
# (--no-build-isolation: no unlocked build dependency is downloaded).
# $(call install_locked,<venv python>,<lock file>)
install_locked = $(1) -m pip install --quiet --disable-pip-version-check --require-hashes \
	--no-deps -r $(2) && \
	$(1) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .

$(VENV)/.installed: requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(call install_locked,$(PY),requirements.lock)
	@touch $@

$(VENV_CDKTN)/.installed: requirements-cdktn.lock pyproject.toml
	@test -x $(PY_CDKTN) || $(PYTHON_BOOTSTRAP) -m venv $(VENV_CDKTN)
	$(call install_locked,$(PY_CDKTN),requirements-cdktn.lock)
	@touch $@

# checkov in its own venv: its dependency tree would clash with the app's pins.
$(VENV_CHECKOV)/.installed: requirements-checkov.lock
	@test -x $(PY_CHECKOV) || $(PYTHON_BOOTSTRAP) -m venv $(VENV_CHECKOV)
	$(PY_CHECKOV) -m pip install --quiet --disable-pip-version-check --require-hashes \
		--no-deps -r requirements-checkov.lock
	@touch $@

# Each lock: <requirements>:<constraints>:<lock>. A new venv adds its triple here and
# installs with $(call install_locked,...).
LOCKS := requirements.txt:constraints.txt:requirements.lock \
	requirements-cdktn.txt:constraints-cdktn.txt:requirements-cdktn.lock \
	requirements-checkov.txt:requirements-checkov.txt:requirements-checkov.lock
VENV_LOCK := .venv-lock

$(VENV_LOCK)/.installed: requirements-lock.txt
	@test -x $(VENV_LOCK)/bin/python || $(PYTHON_BOOTSTRAP) -m venv $(VENV_LOCK)
	$(VENV_LOCK)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		--no-deps -r requirements-lock.txt
	@touch $@

## lock: regenerate the hash-locked requirements*.lock from requirements*.txt + constraints*.txt
##   (with the uv pinned in requirements-lock.txt; needs the package index; commit the result)
lock: $(VENV_LOCK)/.installed
	@set -e; for triple in $(LOCKS); do IFS=: read -r req con lock <<< "$$triple"; \
		$(VENV_LOCK)/bin/python tools/lock_requirements.py --uv $(VENV_LOCK)/bin/uv \
			"$$req" "$$con" "$$lock"; done

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

## synth: synthesize every environment in config/ into cdktf.out/stacks/<env>/cdk.tf.json
##   (ENV=qa or ENV="qa dev": only those; the other stacks in cdktf.out stay as they are)
synth: install
	$(PY) main.py $(if $(filter command line,$(origin ENV)),$(foreach e,$(ENV),--env "$(e)"))

## cdktf-synth: the same through the real cdktf CLI (reads cdktf.json)
cdktf-synth: install
	npx --no-install cdktf synth --output cdktf.out

# Terraform runs in the synthesized stack directory, on whatever backend its JSON names.
TERRAFORM = terraform -chdir=cdktf.out/stacks/$(ENV)
TF_AUTO_APPROVE = $(if $(filter 1,$(AUTO_APPROVE)),-auto-approve -input=false)

## plan: preflight, then terraform init + plan in cdktf.out/stacks/ENV (synthesize first:
##   `make synth plan ENV=dev`; a stale stack, a missing terraform or missing credentials
##   are refused, one line each, exit 2)
plan: install
	$(PY) tools/preflight.py --env "$(ENV)"
	$(TERRAFORM) init -input=false
	$(TERRAFORM) plan -input=false

## deploy: preflight, then terraform init + apply in cdktf.out/stacks/ENV (Terraform asks
##   to confirm; AUTO_APPROVE=1 for CI)
deploy: install
	$(PY) tools/preflight.py --env "$(ENV)"
	$(TERRAFORM) init -input=false
	$(TERRAFORM) apply $(TF_AUTO_APPROVE)

## destroy: terraform destroy of ENV, only with CONFIRM=<the same env>
##   (`make destroy ENV=qa CONFIRM=qa`; Terraform asks again unless AUTO_APPROVE=1)
# The confirmation comes first, before even the install.
destroy: export DESTROY_CONFIRM := $(CONFIRM)
destroy:
	@if [ "$$DESTROY_CONFIRM" != "$(ENV)" ]; then \
		echo "error: CONFIRM: got '$$DESTROY_CONFIRM', allowed '$(ENV)' (make destroy ENV=$(ENV) CONFIRM=$(ENV) destroys every resource of $(ENV))" >&2; \
		exit 2; fi
	@$(MAKE) --no-print-directory -s install
	$(PY) tools/preflight.py --env "$(ENV)"
	$(TERRAFORM) init -input=false
	$(TERRAFORM) destroy $(TF_AUTO_APPROVE)

## export-stack: write what a Terraform Cloud VCS-driven workspace needs into DEST:
##   cdk.tf.json + assets/ of ENV (`make export-stack ENV=prod DEST=infra/prod`; DEST new,
##   empty or a previous export, never inside cdktf.out)
export-stack: install
	$(PY) tools/export_stack.py --env "$(ENV)" --dest "$(DEST)"

## tfc-run: API-driven Terraform Cloud run of ENV: upload the stack as a configuration
##   version, queue a speculative plan, print its URL (APPLY=1: a run that can apply;
##   WAIT=1: wait for its end; WORKSPACE=, ORGANIZATION= if the stack's cloud block does not
##   say; MESSAGE=; TFC_ADDRESS= for Terraform Enterprise)
tfc-run: install
	$(PY) tools/tfc_run.py --env "$(ENV)" $(if $(WORKSPACE),--workspace "$(WORKSPACE)") \
		$(if $(ORGANIZATION),--organization "$(ORGANIZATION)") $(if $(MESSAGE),--message "$(MESSAGE)") \
		$(if $(filter 1,$(APPLY)),--apply) $(if $(filter 1,$(WAIT)),--wait)

## test: lint, type-check, lint the CI workflows and the whole pytest suite
test: install lint typecheck lint-workflows pytest

## test-cdktn: the pytest suite on CDK Terrain (cdktn) instead of cdktf, in its own .venv-cdktn
##   (requirements-cdktn.txt + constraints-cdktn.txt: cdktn 0.24, Google provider 8.x;
##   PYTEST_ARGS as for pytest)
test-cdktn: $(VENV_CDKTN)/.installed node_modules/.installed $(VENV_CHECKOV)/.installed
	$(PY_CDKTN) -m pytest $(PYTEST_ARGS)

## lint: ruff check and ruff format --check
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## lint-workflows: actionlint on .github/workflows, with shellcheck on their run: scripts
##   (both pinned in requirements.txt; WORKFLOWS=path.yml to check other files)
WORKFLOWS ?= $(sort $(wildcard .github/workflows/*.yml))
lint-workflows: $(VENV)/.installed
	$(VENV)/bin/actionlint -no-color -shellcheck=$(VENV)/bin/shellcheck -pyflakes= $(WORKFLOWS)

## typecheck: mypy on the library, main.py, the handler, tools and bench
typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy function_src/main.py tools bench

## pytest: the pytest suite alone (PYTEST_ARGS='-k iam' to pick tests); installs
##   .venv-checkov (checkov 3.3.30, requirements-checkov.txt) for tests/test_checkov.py
pytest: install $(VENV_CHECKOV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

## snapshot-update: refresh the syrupy snapshots after an intended change
snapshot-update: install
	$(PY) -m pytest tests/test_snapshots.py --snapshot-update

## diagram: synthesize, then draw every stack from its cdk.tf.json as Mermaid:
##   docs/diagrams/<env>.md for each config/<env>.toml and the dev diagram in README.md
##   (ENV=qa: only that one)
diagram: synth
	$(PY) tools/diagram.py $(foreach e,$(if $(filter command line,$(origin ENV)),$(ENV),$(basename $(notdir $(wildcard config/*.toml)))),--env "$(e)")

## clean: remove cdktf.out and the tool caches (keeps .venv, node_modules and state files)
clean:
	rm -rf cdktf.out .pytest_cache .mypy_cache .ruff_cache

## run-function: serve function_src/main.py on localhost with the real Functions Framework,
##   configured as workflow WORKFLOW (default: the first) of ENV (default: dev)
##   (PORT, default 8080; local stand-ins for Pub/Sub and Vertex AI unless the endpoints are set)
##   Ctrl-C stops it ("[run-function] stopped.", exit 0); a busy PORT is one line, exit 2
run-function: $(VENV)/.installed
	$(PY) tools/run_function.py --port "$(or $(PORT),8080)" --env "$(ENV)" \
		$(if $(WORKFLOW),--workflow "$(WORKFLOW)")

## publish: publish one event: make publish ENV=dev [WORKFLOW=train] EVENT=model.train DATA='{}'
##   (or TOPIC=projects/p/topics/t instead of ENV/WORKFLOW)
##   (honours PUBSUB_EMULATOR_HOST; CORRELATION_ID optional)
##   PUSH=http://127.0.0.1:8080/: deliver it to `make run-function` as the push subscription
##   would, instead of publishing (prints the handler's answer)
publish: export PUBLISH_TOPIC := $(TOPIC)
publish: export PUBLISH_EVENT := $(EVENT)
publish: export PUBLISH_DATA := $(or $(DATA),{})
publish: export PUBLISH_CORRELATION_ID := $(CORRELATION_ID)
publish: export PUBLISH_PUSH := $(PUSH)
publish: $(VENV)/.installed
	$(PY) tools/publish.py $(if $(TOPIC),--topic "$$PUBLISH_TOPIC",--env "$(ENV)" $(if $(WORKFLOW),--workflow "$(WORKFLOW)")) \
		--type "$$PUBLISH_EVENT" --data "$$PUBLISH_DATA" \
		$${PUBLISH_CORRELATION_ID:+--correlation-id "$$PUBLISH_CORRELATION_ID"} \
		$${PUBLISH_PUSH:+--push-endpoint "$$PUBLISH_PUSH"}

## up: run ENV (default dev) on this machine from its synthesized cdk.tf.json (synthesized
##   first): Google's Pub/Sub emulator with every topic and subscription, one Functions
##   Framework server per function, a Vertex AI stand-in that runs jobs and feeds the log sinks;
##   returns once all serve (state, ports, logs: .twin/<env>/); `make publish ENV=...` uses it
##   (DELAY=1 seconds a job runs, OUTCOME=SUCCEEDED|FAILED|CANCELLED,
##   OUTCOMES='label.workflow=train:FAILED template=batch-predict:CANCELLED',
##   FOREGROUND=1 to stay attached: Ctrl-C stops it)
up: install
	$(PY) main.py --env "$(ENV)"
	$(PY) tools/twin up --env "$(ENV)" --delay "$(or $(DELAY),1)" --outcome "$(or $(OUTCOME),SUCCEEDED)" \
		$(if $(OUTCOMES),--rules "$(OUTCOMES)") $(if $(FOREGROUND),--foreground)

## down: stop everything `make up ENV=...` started (emulator, functions, stand-in; logs stay)
down: $(VENV)/.installed
	$(PY) tools/twin down --env "$(ENV)"

## smoke: after a deploy, prove publish -> push -> handler -> results topic for every workflow
##   of ENV (from cdktf.out/stacks/<env>/cdk.tf.json) without starting a pipeline: one
##   PASS/FAIL line each, exit 1 if one fails (WORKFLOW=train: only it; TIMEOUT=120 seconds;
##   PROJECT=, ALLOW_OTHER_PROJECT=1 to act on another project than the environment's)
smoke: $(VENV)/.installed
	$(PY) tools/smoke.py --env "$(ENV)" $(if $(WORKFLOW),--workflow "$(WORKFLOW)") \
		--timeout "$(or $(TIMEOUT),120)" $(if $(PROJECT),--project "$(PROJECT)") \
		$(if $(ALLOW_OTHER_PROJECT),--allow-other-project)

## replay-dead-letters: republish WORKFLOW's dead letters (ENV) to its trigger topic with the
##   producer's attributes, each acknowledged only after its publish (LIMIT=N: at most N;
##   ERROR=<code>: only those, e.g. vertex_rejected or max_delivery_attempts; DRY_RUN=1: list
##   them, publish and acknowledge nothing; PROJECT=, ALLOW_OTHER_PROJECT=1 as for smoke)
replay-dead-letters: $(VENV)/.installed
	$(PY) tools/replay_dead_letters.py --env "$(ENV)" $(if $(WORKFLOW),--workflow "$(WORKFLOW)") \
		$(if $(LIMIT),--limit "$(LIMIT)") $(if $(ERROR),--error "$(ERROR)") \
		$(if $(DRY_RUN),--dry-run) $(if $(PROJECT),--project "$(PROJECT)") \
		$(if $(ALLOW_OTHER_PROJECT),--allow-other-project)

## bench: eager vs lazy provider imports, 1/10/50/100-workflow stacks, handler import time;
##   cdktf against cdktn; prints a table and writes bench/results.md (RUNS=5 cold processes
##   per variant, ~8 min)
bench: install $(VENV_CDKTN)/.installed
	$(PY) bench/run_bench.py --runs "$(or $(RUNS),5)" --out bench/results.md

## watch: keep one process warm; re-synthesize into cdktf.out when config/, constructs/ or
##   function_src/ change and print the resources added/changed/removed per stack
watch: install
	$(PY) tools/watch.py
