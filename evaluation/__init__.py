"""Evaluation of image reconstructions (`textinfuse eval`, `textinfuse bench-build`): NED, PSNR, SSIM,
LPIPS and FID following OmniDoc-TokenBench, the reference rows (identity, bicubicN) and the benchmark
builder. Importing it imports numpy at most; no torch, no Ray.

Modules: `evaluate` (the evaluation), `images` (loading as the protocol does, converting, captions;
finding and decoding image files is `textinfuse.images`), `references` (identity and bicubic rows),
`ocr_cache` (the originals' OCR lines, cached), `fid` (Fréchet distance of features a caller's network
gives), `bench_build` (crops of your documents).

Layers of the project (tests/test_layers.py checks them from the source, function-level imports
included):

- `render_engine` is a leaf but for the shared input readers `textinfuse.files` and `textinfuse.images`.
- `textinfuse`'s base modules (`configio`, `metrics`, `ocr`, `progress`, `files`, `images`, `png_reader`)
  import no other project package.
- `evaluation` imports `textinfuse`'s base modules (images, caches, progress lines), `render_engine` (a
  leaf: `paths.bundled_fonts`), nothing else: never `training`. What needs torch is handed in by the caller as plain callables: the reconstruction
  (`model_fn`), the LPIPS scorer (`lpips`) and the FID feature extractor (`fid_features`); the builders
  for our networks are in `training.eval_hooks` and `training.inference`.
- `pipelines` imports `render_engine` and `textinfuse` only: never `training` or `evaluation`.
- `training` imports `textinfuse`'s base modules only (never the renderer, the pipelines or the
  evaluation).
- The top may import anything: `textinfuse/cli.py` (all argparse lives there; its subcommands import
  their packages lazily, so `textinfuse --help` imports no torch, Ray, evaluation, training or pipelines
  code) and `ablation` (it wires training to evaluation the way the CLI does).
"""
