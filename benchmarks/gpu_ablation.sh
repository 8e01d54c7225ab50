#!/usr/bin/env bash
# The text-infusion ablation on one GPU (configs/ablation/gpu.yaml: f16c64 at 256 px, the benchmark's
# native character sizes), as one prepared script under 9 minutes. Prints results.md and the wall time.
#   benchmarks/gpu_ablation.sh [OUT_DIR] [ARMS]      e.g. benchmarks/gpu_ablation.sh runs/gpu-ablation general,synthetic
# Needs the project installed with the train extra (PY, default python) and a CUDA build of torch; data
# jobs run in-process (--executor local) so no Ray starts on the GPU machine. Resumable: run it again.
set -euo pipefail
OUT=${1:-runs/gpu-ablation}
ARMS=${2:-general,real-text,plain-text,synthetic,synthetic-f32}
PY=${PY:-python}
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
RESUME=""
[ -f "$OUT/ablation.json" ] && RESUME="--resume"
start=$(date +%s)
timeout 540 $PY -m textinfuse.cli ablate --config configs/ablation/gpu.yaml --out "$OUT" --arms "$ARMS" \
  --seeds 1 --executor local $RESUME
echo "wall seconds: $(( $(date +%s) - start ))"
cat "$OUT/results.md"
