#!/usr/bin/env bash
# GPU smoke benchmark (issue 13): the one prepared script for a bare GPU machine, run from the repo root.
# It must finish in under 9 minutes on one GPU (a hard timeout ends the benchmark at 8m50s; the JSON keeps
# whatever was measured by then).
#   benchmarks/gpu_smoke.sh [OUT_DIR] [gpu_smoke.py options...]   e.g. benchmarks/gpu_smoke.sh runs/gpu-smoke --skip-ocr
#   PY=/path/to/python picks the interpreter (default: python; the project installed with the train extra,
#   a CUDA build of torch; onnxruntime-gpu for the OCR section). WORKERS (default 12) CPUs for the data jobs.
# Builds its own data with the CLI (about a minute): general photos = `filter` of the bundled backgrounds/
# (text checks off; 8 files per shard, so one shard can be held out), synthetic text = `render --recipe f16`,
# 2000 samples in 8 shards; both are reused when run again. Then benchmarks/gpu_smoke.py prints (tables and JSON lines; all of it in OUT_DIR/gpu_smoke.json):
#   a. the trainer's step on f16c64 and f32c192 at 256/512/1024 px (16/4/1 images), checkpointing off and on,
#      with real-sized random teachers (LPIPS-VGG16, DINOv2-L's shape): step time, images/s, peak GPU memory;
#   b. a 1500-step f16c64 training at 256 px (tiny random DINOv2 stand-in, EMA decay 0.9933; fewer steps when
#      section a's step time says 1500 would not fit): PSNR at step 0 and at the end, PSNR and NED of the raw
#      and the EMA weights on held-out synthetic text;
#   c. OCR images/s on the CPU and on the GPU (skipped without onnxruntime's CUDA provider).
# Its --time-budget is what is left of 8 minutes once the data is built: later settings are skipped past it.
set -euo pipefail
OUT=${1:-runs/gpu-smoke}
PY=${PY:-python}
WORKERS=${WORKERS:-12}
start=$(date +%s)
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
mkdir -p "$OUT"
$PY -m textinfuse.cli filter --input backgrounds --out "$OUT/general" --set name=general \
  --set text_density.enabled=false --set files_per_task=8 --workers "$WORKERS"
$PY -m textinfuse.cli render --recipe f16 --num-samples 2000 --samples-per-shard 250 --out "$OUT/synthetic" \
  --workers "$WORKERS"
used=$(( $(date +%s) - start ))
echo "data built in $used s"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # the repo's packages, installed or not
timeout $(( 530 - used )) $PY benchmarks/gpu_smoke.py --general "$OUT/general" --synthetic "$OUT/synthetic" \
  --out "$OUT/run" --json "$OUT/gpu_smoke.json" --time-budget $(( 480 - used )) "${@:2}" ||
  { rc=$?; echo "gpu_smoke.py ended with exit $rc (124: the 9-minute limit); results so far: $OUT/gpu_smoke.json"; exit $rc; }
echo "wall seconds: $(( $(date +%s) - start ))"
