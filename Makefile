# recexp — every target installs what it needs into .venv first.
PY        ?= python3
VENV      ?= .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
# On a machine without an NVIDIA GPU, install the CPU build of torch first so pip does not pull a
# multi-GB CUDA build; on a GPU machine the normal resolution of `torch>=...` applies.
TORCH_CPU ?= torch==2.13.0
HAS_GPU   := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
ARGS      ?=
PORT      ?= 5000

.PHONY: install train test test-slow test-gpu test-browser lint ui bench bench-ttq clean mlflow-server mlflow-server-stop

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
ifneq ($(HAS_GPU),1)
	$(BIN)/pip install -q "$(TORCH_CPU)" || echo "CPU torch wheel not available; falling back to the default torch resolution"
endif
	$(BIN)/pip install -q -e ".[dev,sweep]"
	touch $(STAMP)

train: install            ## one SASRec run on the embedded synthetic data (ARGS="dataset=beauty ...")
	$(BIN)/recexp train model=sasrec $(ARGS)

test: install             ## default suite (what CI runs)
	$(BIN)/python -m pytest

test-slow: install        ## quality checks and sweeps
	$(BIN)/python -m pytest -m slow

test-gpu: install
	$(BIN)/python -m pytest -m gpu

test-browser: install     ## the MLflow UI in headless Chromium (Debian's chromium + Playwright); writes docs/img/mlflow_runs.png
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "warning: could not install chromium; the browser test will skip"
	$(BIN)/pip install -q -e ".[browser]"
	$(BIN)/python -m pytest -m browser tests/browser

lint: install
	$(BIN)/ruff check src tests bench

ui: install               ## MLflow UI over the store (runs/mlflow.db); prints the address of the last-trained runs
	$(BIN)/recexp ui --port $(PORT)

SERVER_ROOT ?= runs/server
PG_PORT     ?= 5433
mlflow-server: install    ## team tracking server on 127.0.0.1:$(PORT), PostgreSQL-backed (then: recexp train tracking=server)
	$(BIN)/python -m recexp.record.server start --root $(SERVER_ROOT) --port $(PORT) --pg-port $(PG_PORT)

mlflow-server-stop: install
	$(BIN)/python -m recexp.record.server stop --root $(SERVER_ROOT)

bench: install
	$(BIN)/python bench/bench_speed.py $(ARGS)

# time to RecBole's best SASRec validation NDCG@10 on Beauty (.0503, its epoch 11; history not
# masked), both tools timed in this one run, one thread each (~13 min; needs RECEXP_DATA_DIR)
bench-ttq: install        ## time-to-quality against RecBole (docs/benchmarks.md)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python bench/bench_speed.py --models sasrec --epochs 1 \
		--ttq 0.0503 --ttq-epochs 16 --ttq-recbole-epochs 11 \
		--overrides "trainer.window_mode=prefixes trainer.batch_size=256 model.dropout=0.3" $(ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
