# selfservice — the two commands are `make demo` and `make test`; both set themselves up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PY_SOURCES := schemas src services tests bench
TEMPLATES := template.yaml $(sort $(wildcard sam/*.yaml))

.PHONY: help setup test test-fast lint typecheck cfn-lint scan deploy-check pytest demo schemas plans bench bundle lock lock-scan lock-sam clean iam-report

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "selfservice needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever the pins change; constraints.txt locks the transitive set.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install the pinned dependencies

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)

typecheck: $(STAMP) ## mypy (strict, pydantic plugin) over code and tests
	$(BIN)/mypy $(PY_SOURCES)

# The serverless rules (awslabs/serverless-rules) add Lambda, SQS, API and EventBridge
# best practices; findings are fixed or ignored beside the resource, with the reason.
# `--` ends --append-rules, which would otherwise take the templates for rule modules.
CFN_LINT := $(BIN)/cfn-lint --append-rules cfn_lint_serverless.rules

cfn-lint: $(STAMP) ## cfn-lint, with the serverless rules, over every SAM template
	$(CFN_LINT) -- $(TEMPLATES)

SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed

$(SCAN_STAMP): tools/scan-requirements.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/scan-requirements.txt
	@touch $(SCAN_STAMP)

# --skip-download: checkov would otherwise call its vendor's API (no network here, by design).
# checkov exits 0 when it cannot parse a file (it only counts a parsing error), so that fails too.
define checkov
	@echo checkov $(1)
	@out="$$($(SCAN_VENV)/bin/checkov $(1) --skip-download --compact --quiet 2>&1)"; status=$$?; \
	printf '%s\n' "$$out"; \
	if grep -q 'Parsing errors' <<<"$$out"; then echo 'checkov could not parse a file' >&2; exit 1; fi; \
	exit $$status
endef

# The templates are scanned as written: checkov applies SAM Globals to the AWS::Serverless
# resources but does not run the transform, and does not follow nested applications, so
# each template under sam/ is given to it.
scan: $(SCAN_STAMP) ## checkov over the Terraform products and the SAM templates (no failed check allowed)
	$(call checkov,--directory services/provisioner/products --framework terraform)
	$(call checkov,--framework cloudformation $(addprefix --file ,$(TEMPLATES)))

lock-scan: ## refresh tools/scan-requirements.txt
	rm -rf .lock-scan && $(PYTHON) -m venv .lock-scan
	.lock-scan/bin/python -m pip install --quiet --disable-pip-version-check checkov==3.3.30
	{ head -2 tools/scan-requirements.txt; .lock-scan/bin/python -m pip freeze | LC_ALL=C sort -f; } > tools/scan-requirements.txt.new
	mv tools/scan-requirements.txt.new tools/scan-requirements.txt && rm -rf .lock-scan

SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed

# The SAM CLI pins its own boto3, cfn-lint and aws-sam-translator: its own venv, like checkov's.
$(SAM_STAMP): tools/sam-requirements.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/sam-requirements.txt
	@touch $(SAM_STAMP)

# sam validate --lint, sam build (with python3.13 when on PATH, or SELFSERVICE_LAMBDA_PYTHON;
# else skipped, naming --use-container), sam package into the embedded S3, the SAM transform
# and cfn-lint over its output. src/selfservice/develop/deploy_check.py; build/deploy-check keeps the files.
deploy-check: $(STAMP) $(SAM_STAMP) ## what a first `sam deploy` would meet, checked offline
	$(BIN)/python -m selfservice.develop.deploy_check --sam $(SAM_VENV)/bin/sam --work build/deploy-check

lock-sam: ## refresh tools/sam-requirements.txt
	rm -rf .lock-sam && $(PYTHON) -m venv .lock-sam
	.lock-sam/bin/python -m pip install --quiet --disable-pip-version-check aws-sam-cli==1.170.0
	{ head -2 tools/sam-requirements.txt; .lock-sam/bin/python -m pip freeze | LC_ALL=C sort -f; } > tools/sam-requirements.txt.new
	mv tools/sam-requirements.txt.new tools/sam-requirements.txt && rm -rf .lock-sam

# Two workers (this project's reference machine has 2 cores); a file's tests stay on one
# worker, so module fixtures (an embedded AWS, a running platform) are built once.
PYTEST_WORKERS ?= 2

pytest: $(STAMP) ## the test suite, end-to-end tier included
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=20

test: lint typecheck cfn-lint scan deploy-check pytest ## every check: lint, types, templates, scans, deploy check, tests

# The pure tier (tests/tiers.py): no embedded AWS, no sockets; under a minute on 2 cores.
# Property tests run a tenth of their examples here (tests/conftest.py: fuzz_examples).
test-fast: $(STAMP) ## the pure tier alone (no embedded AWS, no sockets), while iterating
	SELFSERVICE_TEST_TIER=fast $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not integration and not e2e"

demo: $(STAMP) ## run the main job on the embedded stack
	$(BIN)/selfservice demo

# The demo and the e2e tests with Terraform and the ops API write the embedded AWS's
# authorization decisions to build/iam-usage/; the report sets them against the grants.
IAM_USAGE := $(abspath build/iam-usage)

iam-report: $(STAMP) ## per role: IAM permissions granted vs used by the demo and e2e runs (docs/iam-report.md)
	rm -rf $(IAM_USAGE) && mkdir -p $(IAM_USAGE)
	SELFSERVICE_IAM_USAGE_LOG=$(IAM_USAGE)/demo.jsonl $(BIN)/selfservice demo
	SELFSERVICE_IAM_USAGE_LOG=$(IAM_USAGE)/e2e.jsonl $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/provisioner/test_e2e_terraform.py tests/test_ops_e2e.py
	$(BIN)/selfservice iam-report $(IAM_USAGE)/demo.jsonl $(IAM_USAGE)/e2e.jsonl --output docs/iam-report.md

bench: $(STAMP) ## run the benchmarks and write docs/benchmarks.md
	PYTHONPATH=.:services/intake:services/provisioner:services/notifier $(BIN)/python -m bench.run

bundle: $(STAMP) ## zip the provisioner's buildspec and products (CodeBuild source)
	$(BIN)/selfservice bundle

plans: $(STAMP) ## re-record tests/fixtures/plans/ with real Terraform on the embedded AWS (~3 min)
	$(BIN)/python -m selfservice.develop.record_plans

schemas: $(STAMP) ## re-export the JSON Schemas and the event catalog from the models
	$(BIN)/selfservice contracts export

lock: $(BIN)/python ## refresh constraints.txt from a clean resolve of pyproject.toml
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check '.[dev]'
	.lock-venv/bin/python -m pip freeze --exclude selfservice | LC_ALL=C sort -f > constraints.txt
	rm -rf .lock-venv

clean: ## remove the virtualenv and caches
	rm -rf $(VENV) $(SCAN_VENV) $(SAM_VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
