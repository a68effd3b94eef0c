#!/usr/bin/env bash
# The GPU measurements of docs/benchmarks.md, as one prepared script (run once on a GPU machine):
#   RECEXP_DATA_DIR=/path/to/datasets bash bench/gpu_check.sh [PYTHON]
# Exits 0 with a message when no CUDA device is visible. RecBole is not run here: a GPU machine
# without network cannot build bench/.recbole-venv (bring wheels; see docs/benchmarks.md).
# Each step has its own time bound (GPU_CHECK_STEP_S, default 120 s) and a failed or timed-out step
# is reported and skipped, so one slow shape never costs the figures of the others.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${1:-${PYTHON:-python}}
STEP_S=${GPU_CHECK_STEP_S:-120}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device visible; nothing measured"; exit 0
fi
step() {  # step NAME SECONDS CMD...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== gpu_check: $name"
  timeout "$limit" "$@"; local rc=$?
  echo "== gpu_check: $name: exit $rc after $((SECONDS - t0)) s$([ $rc = 124 ] && echo ' (time bound reached)')"
}
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(), 'torch', torch.__version__)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
# 1. Beauty SASRec, 3 epochs (the first includes warm-up), recexp only, eager then torch.compile
step "beauty sasrec eager" "$STEP_S" "$PY" bench/bench_speed.py --device cuda --models sasrec --epochs 3 --no-recbole
step "beauty sasrec compiled" "$STEP_S" "$PY" bench/bench_speed.py --device cuda --models sasrec --epochs 3 \
  --no-recbole --overrides "trainer.compile=true"
# 2. ML-1M-shaped synthetic SASRec epoch (target <= 0.5 s) and 10^6 items, eager then torch.compile
step "scale ml1m,items-1m" "$STEP_S" "$PY" bench/bench_speed.py --device cuda --epochs 2 --scale ml1m,items-1m
step "scale ml1m compiled" "$STEP_S" "$PY" bench/bench_speed.py --device cuda --epochs 3 --scale ml1m \
  --overrides "trainer.compile=true"
# 3. Full CE against its scalable approximations at ML-20M shape and with 10^6 items
step "losses ml20m,items-1m" "$STEP_S" "$PY" bench/bench_speed.py --device cuda --scale ml20m,items-1m \
  --scale-losses ce,sce,rece,sampled_softmax --train-batches 10 --ce-batches 5
# 4. Data-parallel smoke (docs/distributed.md): N processes, one GPU each (NCCL), when N >= 2 GPUs are
# visible; on one GPU the distributed path forced with one process (RECEXP_DDP=always: the launcher,
# NCCL, DDP's all-reduce and the gathered evaluation). Records into a throwaway store.
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
if [ "${NGPU:-0}" -ge 2 ]; then DDP_N=$NGPU; DDP_MODE=auto; else DDP_N=1; DDP_MODE=always; fi
DDP_RUNS=$(mktemp -d)
step "ddp smoke, $DDP_N process(es)" "$STEP_S" env RECEXP_DDP=$DDP_MODE RECEXP_RUNS_DIR="$DDP_RUNS" \
  "$PY" -m recexp.cli train model=sasrec device=cuda trainer.max_epochs=2 trainer.num_processes="$DDP_N" \
  trainer.progress=false hydra.run.dir="$DDP_RUNS/job"
if [ "${NGPU:-0}" -ge 2 ]; then  # scaling, measured: 1 GPU against all of them
  step "ddp scaling 1,$NGPU" "$STEP_S" "$PY" bench/bench_ddp.py --device cuda --processes "1,$NGPU"
fi
rm -rf "$DDP_RUNS"
