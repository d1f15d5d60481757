# Everything runs inside .venv (created by `make setup` from pyproject.toml alone).
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)

# `make run` overrides of params.yaml, applied with `dvc exp run -S`; ROW: an ablation row's settings.
ROW ?=
DATASET ?=
SOURCE ?=
QUICK ?=
QUICK_EPOCHS ?= 2
OVERRIDES := $(if $(ROW),--row $(ROW)) \
             $(if $(DATASET),--set data.dataset=$(DATASET)) \
             $(if $(SOURCE),--set data.source=$(SOURCE)) \
             $(if $(QUICK),--set train.epochs=$(QUICK_EPOCHS))
PYTEST_ARGS ?=

.PHONY: setup run repro serve web bench bench-train bench-client browser perf-deps test test-fast clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

## The main job: dvc repro, serve with Triton, classify held-out clips, report.
run: setup
	$(BIN)/python -m pipelines.run $(OVERRIDES)

repro: setup
	$(BIN)/dvc repro

## Real tritonserver on 127.0.0.1: HTTP 8000, gRPC 8001, metrics 8002. Serves the workspace's
## export, or with ALIAS=champion the repository of the registered version carrying that alias.
ALIAS ?=
serve: setup
ifdef ALIAS
	$(BIN)/python -m model_repository.registry fetch --alias $(ALIAS) --out build/serving/model_repository
	$(BIN)/python -m model_repository.server --model-repository build/serving/model_repository
else
	$(BIN)/python -m model_repository.server --model-repository artifacts/model_repository
endif

## The upload page on 127.0.0.1:8080, sending files to the Triton of `make serve`.
web: setup
	$(BIN)/python -m client.web --triton-url 127.0.0.1:8000 --port 8080

## Serving benchmark (perf_analyzer vs FastAPI + eager PyTorch vs in-process onnxruntime);
## writes docs/benchmarks.json and docs/benchmarks.md. Needs `dvc repro export` first.
## Runs the training benchmark first.
bench: bench-train setup perf-deps
	$(BIN)/python -m benchmarks.serving

## Training benchmark (input resolution, stride, width: clips/s and the projected ESC-10 recipe
## time); writes docs/training_benchmarks.json and docs/training_benchmarks.md.
bench-train: setup
	$(BIN)/python -m benchmarks.training

## Client shared-memory benchmark; writes build/benchmarks/client_shm.json.
bench-client: setup
	$(BIN)/python -m benchmarks.client_shm

## Headless Chromium + chromedriver (Debian) for the upload page's browser test; needs root
## and apt. Without them that one test is skipped, saying why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	else echo "chromium/chromedriver not installed: the browser test will be skipped"; fi

## libb64 (Debian libb64-0d), which perf_analyzer links against; needs root and apt. Without it
## the perf_analyzer test is skipped, saying why.
perf-deps:
	@if ldconfig -p | grep -q 'libb64\.so\.0d'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libb64-0d; \
	else echo "libb64-0d not installed: the perf_analyzer test will be skipped"; fi

## The whole test suite (what CI runs).
test: setup browser perf-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Unit tests only: no pipeline run, no server.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
