#!/usr/bin/env bash
# GPU smoke test (<= 10 minutes on one GPU): f16c64 at 256x256 on mixed shards for a few thousand steps.
# Prints steps/s, peak GPU memory, PSNR at start and end (metrics.jsonl), and NED on held-out text images
# (OCR of originals vs reconstructions, textinfuse.ocr + textinfuse.metrics.ned_similarity) when available.
#   benchmarks/gpu_smoke.sh GENERAL_DIR SYNTHETIC_DIR [RUN_DIR] [STEPS]
# Teachers: with local weights pass TEACHERS="--set teachers.lpips_vgg=... --set teachers.lpips_heads=...
# --set teachers.dinov2=DIR"; without them the run uses random stand-ins (throughput only, not quality).
set -euo pipefail
GEN=${1:?general shard dir}; SYN=${2:?synthetic shard dir}; RUN=${3:-runs/gpu-smoke}; STEPS=${4:-3000}
PY=${PY:-python}
TEACHERS=${TEACHERS:-"--set teachers.allow_random_teachers=true --set teachers.dinov2= --set teachers.lpips_vgg= --set teachers.lpips_heads="}
STAGES="[{name: smoke, steps: $STEPS, resolution: 256, weights: {general: 0.5, synthetic: 0.5}, lpips: 0.0, align: 0.5, lr: 2.0e-4}]"
timeout 570 $PY - "$GEN" "$SYN" "$RUN" "$STAGES" $TEACHERS <<'PYEOF'
import json, logging, sys, time
import torch
from training.config import load_train_config
from training.loop import train
gen, syn, run, stages, *rest = sys.argv[1:]
sets = [rest[i + 1] for i in range(0, len(rest), 2)]
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
cfg = load_train_config("configs/train/f16c64.yaml",
                        [f"stages={stages}", "optim.warmup_steps=200", "eval.every=1000", "ckpt_every=100000",
                         "data.batch_size=16", "data.workers=12", "eval.num_samples=16", *sets],
                        [f"general={gen}", f"synthetic={syn}"])
torch.cuda.reset_peak_memory_stats()
t = time.time()
s = train(cfg, run)
m = [json.loads(line) for line in open(f"{run}/metrics.jsonl")]
ev = [r for r in m if "psnr" in r]
print(json.dumps({"steps": s["step"], "wall_s": round(time.time() - t, 1),
                  "steps_per_s": round(m[-1].get("steps_per_s", 0), 2),
                  "peak_gpu_mem_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                  "psnr_start": ev[0]["psnr"], "psnr_end": ev[-1]["psnr"], "mix": s["mix"]}))
try:  # NED on held-out synthetic text: OCR(original) vs OCR(reconstruction)
    from safetensors.torch import load_file
    from textinfuse import ocr
    from textinfuse.metrics import ned_similarity
    from training.data import eval_images, shard_urls, split_holdout
    from training.models import build_model
    ae = build_model("f16c64").cuda().eval()
    w = load_file(f"{s['checkpoint']}/ema.safetensors")
    ae.load_state_dict({k[len("net.ae."):]: v for k, v in w.items() if k.startswith("net.ae.")})
    x = eval_images([split_holdout(shard_urls(syn), 1)[1]], 16, 256).cuda().float() / 127.5 - 1
    with torch.no_grad():
        xr = ae(x)[0].clamp(-1, 1)
    to_np = lambda t: ((t + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    neds = [ned_similarity(" ".join(l.text for l in ocr.read(to_np(a))), " ".join(l.text for l in ocr.read(to_np(b))))
            for a, b in zip(x, xr)]
    print(json.dumps({"ned_end_ema": sum(neds) / len(neds)}))
except ImportError as e:
    print(f"NED skipped: {e}")
PYEOF
