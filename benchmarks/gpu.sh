#!/usr/bin/env bash
# The GPU figures of issue 14 in one job (< 8 min on a lent device): see benchmarks/gpu_run.py for the stages.
#   bash benchmarks/gpu.sh                 # on the device: writes benchmarks/results/gpu-<device>-<date>.json
#   bash benchmarks/gpu.sh --dry-run       # on CPU, tiny shape, every stage (well under a minute)
# Extra arguments go to gpu_run.py (--out DIR, --only steps ablations, --budget-s S).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
if [[ "${1:-}" == "--dry-run" ]]; then
  shift
  exec timeout 300 python benchmarks/gpu_run.py --dry-run "$@"   # ~30 s on an idle 2-core machine
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')"
exec timeout 470 python benchmarks/gpu_run.py --budget-s 360 "$@"
