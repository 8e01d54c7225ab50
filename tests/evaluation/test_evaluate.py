"""`textinfuse eval` on crops of real documents (tests/fixtures/documents, see SOURCES.md).

OCR is the cost (~1-3 s per 256 px crop on one core), so the set is two crops and the ground-truth
OCR cache is shared between the tests."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evaluation.evaluate import evaluate, load_optional
from evaluation.images import load_protocol_rgb
from evaluation.ocr_cache import CACHE_NAME
from evaluation.references import reference_fn
from textinfuse.metrics import psnr, ssim

DOCS = Path(__file__).resolve().parents[1] / "fixtures" / "documents"
KEYS = {"num_samples", "PSNR", "SSIM", "LPIPS", "FID", "NED", "NED_samples", "ned_text", "LPIPS_reason", "FID_reason"}
IDENTICAL_DB = 80.0  # piq's PSNR of identical images: -10 log10(0 + 1e-8)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="session")
def gt_dir(tmp_path_factory) -> Path:
    """Two 256x256 crops: English (PDF rendered with pypdfium2, em ~14 px) and Chinese (page image)."""
    pdfium = pytest.importorskip("pypdfium2")
    d = tmp_path_factory.mktemp("gt")
    en = np.asarray(pdfium.PdfDocument(str(DOCS / "debian-reference-en-p7.pdf"))[0].render(scale=1.4).to_pil().convert("RGB"))
    zh = np.asarray(Image.open(DOCS / "debian-reference-zh-cn-p6.png").convert("RGB"))
    Image.fromarray(en[150:406, 80:336]).save(d / "en.png")
    Image.fromarray(zh[160:416, 90:346]).save(d / "zh.png")
    return d


@pytest.fixture(scope="session")
def identity(gt_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("identity")
    evaluate(gt_dir, out, reference="identity")
    return out


def test_psnr_ssim_basics():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert psnr(a, a) == IDENTICAL_DB and ssim(a, a) == pytest.approx(1.0)
    assert 20 < psnr(a, b) < 40 and 0 < ssim(a, b) < 1
    with pytest.raises(ValueError):
        psnr(a, b[:16])


def test_identity_scores_ned_one_and_80_db(identity, gt_dir):
    r = json.loads((identity / "results.json").read_text())
    assert set(r) == KEYS and r["ned_text"] == "engine"
    assert r["num_samples"] == 2 and r["NED_samples"] == 2
    assert r["NED"] == 1.0 and r["PSNR"] == IDENTICAL_DB and r["SSIM"] == pytest.approx(1.0)
    assert r["LPIPS"] is None and r["FID"] is None and "weights" in r["LPIPS_reason"]
    rows = read_jsonl(identity / "details.jsonl")
    assert [x["name"] for x in rows] == ["en.png", "zh.png"]
    assert all(x["psnr"] == IDENTICAL_DB and x["ned"] == 1.0 and len(x["ocr_gt"]) > 50 for x in rows)
    assert any(ch >= "\u4e00" for ch in rows[1]["ocr_gt"])  # Chinese text read as Chinese
    assert " " in rows[0]["ocr_gt"]  # the engine's text keeps the spaces between English words
    nd = json.loads((identity / "ned_details.json").read_text(encoding="utf-8"))  # the reference's file
    assert list(nd) == ["avg_ned", "total_samples", "valid_samples", "details"]
    assert nd["avg_ned"] == 1.0 and nd["total_samples"] == 2 and nd["valid_samples"] == 2
    assert [list(d) for d in nd["details"]] == [["file", "gt_text", "rec_text", "ned"]] * 2
    assert [d["file"] for d in nd["details"]] == ["en.png", "zh.png"]
    assert [d["gt_text"] for d in nd["details"]] == [x["ocr_gt"] for x in rows]
    assert (identity / "worst.png").exists() and not (gt_dir / CACHE_NAME).exists()
    assert (Path(os.environ["XDG_CACHE_HOME"]) / "textinfuse" / "eval" / CACHE_NAME).exists()  # ours, private


def test_cached_ground_truth_ocr_is_reused(identity, gt_dir, tmp_path):
    evaluate(gt_dir, tmp_path, model_fn="numpy:copy")  # the hook: module:function, an identity here
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["gt_ocr_cache_hits"] == 2 and rep["ocr_runs"] == 0
    assert json.loads((tmp_path / "results.json").read_text())["NED"] == 1.0


def test_ned_text_variants_derive_from_one_cached_reading(identity, gt_dir, tmp_path):
    """The cache holds the engine's lines, so the normalised text comes from it with no OCR run, and the
    variants never mix: engine = lines joined as read; normalised = reading order, no whitespace."""
    src = gt_dir
    r = evaluate(src, tmp_path / "norm", model_fn="numpy:copy", ned_text="normalised")
    rep = json.loads((tmp_path / "norm" / "report.json").read_text())
    assert r["ned_text"] == rep["ned_text"] == "normalised" and rep["ocr_runs"] == 0 and r["NED"] == 1.0
    engine = {x["name"]: x["ocr_gt"] for x in read_jsonl(identity / "details.jsonl")}
    norm = {x["name"]: x["ocr_gt"] for x in read_jsonl(tmp_path / "norm" / "details.jsonl")}
    assert all(not any(c.isspace() for c in t) for t in norm.values())
    assert norm["en.png"] != engine["en.png"]
    assert sorted(norm["en.png"]) == sorted(c for c in engine["en.png"] if not c.isspace())  # same lines
    with pytest.raises(ValueError, match="ned_text"):
        evaluate(src, tmp_path / "bad", reference="identity", ned_text="raw")


def test_an_ocr_cache_shipped_inside_a_gt_folder_is_never_read(identity, gt_dir, tmp_path):
    """A GT folder from elsewhere may carry a cache whose texts would give any score: it is ignored."""
    from evaluation.ocr_cache import ocr_version, pixel_key

    gt = tmp_path / "gt"
    shutil.copytree(gt_dir, gt)
    lines = [json.dumps({"key": pixel_key(load_protocol_rgb(p)), "engine": ocr_version(),
                         "lines": [["poison", [[0, 0], [9, 0], [9, 9], [0, 9]], 1.0]]})
             for p in sorted(gt.glob("*.png"))]
    (gt / CACHE_NAME).write_text("\n".join(lines) + "\n")
    evaluate(gt, tmp_path / "out", reference="identity")
    rows = [json.loads(x) for x in (tmp_path / "out" / "details.jsonl").read_text().splitlines()]
    assert rows and all(r["ocr_gt"] != "poison" and len(r["ocr_gt"]) > 50 for r in rows)


def test_bicubic16_scores_clearly_lower(identity, gt_dir, tmp_path):
    r = evaluate(gt_dir, tmp_path, reference="bicubic16")
    assert r["num_samples"] == 2 and r["NED"] < 0.5
    assert 5 < r["PSNR"] < 30 and r["SSIM"] < 0.9
    assert reference_fn("bicubic8")(np.zeros((1, 64, 64, 3), np.float32)).shape == (1, 64, 64, 3)


def test_bad_pairs_are_reported_not_fatal(identity, gt_dir, tmp_path):
    gt, rec = tmp_path / "gt", tmp_path / "rec"
    shutil.copytree(gt_dir, gt)  # the OCR cache, keyed by pixels, serves the copy too
    rec.mkdir()
    shutil.copy(gt / "en.png", rec / "en.png")  # good pair
    Image.open(gt / "zh.png").resize((200, 200)).save(rec / "zh.png")  # another size: resized, scored
    Image.new("RGB", (64, 64), "white").save(gt / "blank.png")
    (rec / "blank.png").write_bytes(b"not a png")  # unreadable reconstruction
    Image.new("RGB", (64, 64), "white").save(gt / "missing.png")  # no reconstruction
    (gt / "broken.png").write_bytes(b"\x89PNG truncated")  # unreadable original
    Image.new("RGB", (64, 64)).save(rec / "orphan.png")
    r = evaluate(gt, tmp_path / "out", rec)
    assert r["num_samples"] == 5 and r["NED_samples"] == 2  # every original counts; two have text
    rows = {x["name"]: x for x in read_jsonl(tmp_path / "out" / "details.jsonl")}
    errors = {k: x.get("error", "") for k, x in rows.items()}
    assert errors["en.png"] == "" and rows["en.png"]["ned"] == 1.0 and "resized_from" not in rows["en.png"]
    assert errors["zh.png"] == "" and rows["zh.png"]["resized_from"] == "200x200" and 0 < rows["zh.png"]["ssim"] < 1
    zh = load_protocol_rgb(gt / "zh.png")
    up = np.asarray(Image.open(rec / "zh.png").convert("RGB").resize((256, 256), Image.Resampling.BICUBIC))
    assert rows["zh.png"]["psnr"] == pytest.approx(psnr(zh, up), abs=1e-9)
    assert errors["blank.png"].startswith("unreadable reconstruction")
    assert errors["missing.png"] == "missing in recon dir"
    assert errors["broken.png"].startswith("unreadable original")
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["recon_without_original"] == ["orphan.png"] and sum(rep["problems"].values()) == 3
    assert rep["resized_reconstructions"] == 1


def test_failing_model_is_reported(gt_dir, tmp_path):
    def broken(batch):
        raise RuntimeError("out of memory")

    r = evaluate(gt_dir, tmp_path, model_fn=broken)
    assert r["num_samples"] == 2 and r["PSNR"] is None and r["SSIM"] is None and r["NED_samples"] == 0
    assert not (tmp_path / "ned_details.json").exists()
    assert all("model failed" in x["error"] for x in read_jsonl(tmp_path / "details.jsonl"))


def test_a_folder_without_checkpoint_is_a_clear_error(gt_dir, tmp_path, capsys):
    pytest.importorskip("torch")
    from textinfuse.cli import main

    assert main(["eval", "--gt-dir", str(gt_dir), "--out", str(tmp_path / "out"), "--checkpoint", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no checkpoint" in err
    with pytest.raises(ValueError, match="only names the weights"):  # the API loads nothing itself
        evaluate(gt_dir, tmp_path / "out", checkpoint=str(tmp_path))


def _lpips(weights: str) -> dict:
    """evaluate()'s LPIPS keywords as `--lpips-weights` builds them."""
    from training.eval_hooks import lpips_scorer

    lpips, reason = load_optional("LPIPS", weights, lpips_scorer)
    return {"lpips": lpips, "lpips_reason": reason}


def _fid(weights: str) -> dict:
    """evaluate()'s FID keywords as `--fid-weights` builds them."""
    from training.eval_hooks import fid_extractor

    features, reason = load_optional("FID", weights, fid_extractor)
    return {"fid_features": features, "fid_reason": reason}


def test_lpips_from_local_weight_files(identity, gt_dir, tmp_path):
    """The real loading path with files in the real formats (random weights: the trained ones cannot be
    had offline); identical images score 0, blurred ones more; without torch the reason says so."""
    torch = pytest.importorskip("torch")
    from training.losses import LPIPS

    net = LPIPS(allow_random=True)
    torch.save({f"features.{k}": v for k, v in net.features.state_dict().items()}, tmp_path / "vgg16-test.pth")
    torch.save({f"lin{i}.model.1.weight": lin.weight for i, lin in enumerate(net.lins)}, tmp_path / "vgg.pth")
    weights = f"{tmp_path / 'vgg16-test.pth'},{tmp_path / 'vgg.pth'}"
    same = evaluate(gt_dir, tmp_path / "same", reference="identity", **_lpips(weights))
    blur = evaluate(gt_dir, tmp_path / "blur", reference="bicubic8", **_lpips(str(tmp_path)))
    assert same["LPIPS"] == 0.0 and "LPIPS_reason" not in same
    assert blur["LPIPS"] > 0.0
    missing = evaluate(gt_dir, tmp_path / "none", reference="identity", **_lpips(str(tmp_path / "nope")))
    assert missing["LPIPS"] is None and "unusable" in missing["LPIPS_reason"]


def test_fid_from_a_local_inception_file(gt_dir, tmp_path):
    """The real loading path (a state dict with pytorch-fid's parameter names, loaded strictly) with a
    randomly initialised network; identical sets score 0, degraded ones more; originals' features are
    cached; a file for another network is refused with the reason."""
    torch = pytest.importorskip("torch")
    from training.inception import FIDInception

    torch.manual_seed(0)
    net = FIDInception()
    for m in net.modules():  # He init keeps activations alive through 94 random layers
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    weights = tmp_path / "pt_inception-test.pth"
    torch.save(net.state_dict(), weights)
    same = evaluate(gt_dir, tmp_path / "same", reference="identity", **_fid(str(weights)))
    cache = list((Path(os.environ["XDG_CACHE_HOME"]) / "textinfuse" / "eval").glob(".textinfuse-fid-*.npz"))
    assert same["FID"] is not None and abs(same["FID"]) < 1e-6 and "FID_reason" not in same and len(cache) == 1
    stamp = cache[0].stat().st_mtime_ns
    blur = evaluate(gt_dir, tmp_path / "blur", reference="bicubic16", **_fid(str(weights)))
    assert blur["FID"] > 1e-3 and cache[0].stat().st_mtime_ns == stamp  # originals came from the cache
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "other.pth")
    other = evaluate(gt_dir, tmp_path / "other", reference="identity", **_fid(str(tmp_path / "other.pth")))
    assert other["FID"] is None and "unusable FID Inception weights" in other["FID_reason"]


def test_frechet_distance_agrees_in_sample_and_feature_space():
    from textinfuse.metrics import frechet_distance

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) * 1.5 + 0.3
    few = frechet_distance(a[:5], b[:4])  # N < D: sample space
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9) and frechet_distance(a, b) > 0.5
    mean_a, mean_b = a[:5].mean(0), b[:4].mean(0)
    sa, sb = np.cov(a[:5], rowvar=False), np.cov(b[:4], rowvar=False)
    w, v = np.linalg.eigh(sa)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    direct = ((mean_a - mean_b) ** 2).sum() + np.trace(sa) + np.trace(sb) - 2 * np.sqrt(
        np.clip(np.linalg.eigvalsh(root @ sb @ root), 0, None)).sum()
    assert few == pytest.approx(direct, rel=1e-6)
    with pytest.raises(ValueError):
        frechet_distance(a[:1], b)


def test_parsers():
    from textinfuse.cli import build_parser

    p = build_parser()
    a = p.parse_args(["eval", "--gt-dir", "g", "--out", "o", "--reference", "bicubic16"])
    assert a.reference == "bicubic16" and a.recon_dir is None and callable(a.func)
    with pytest.raises(SystemExit):
        p.parse_args(["eval", "--gt-dir", "g", "--out", "o", "--reference", "identity", "--recon-dir", "r"])
    b = p.parse_args(["bench-build", "--input", "a.pdf", "b.png", "--out", "o"])
    assert b.input == ["a.pdf", "b.png"] and b.lang is None  # unset flags leave the config's values (auto)
    c = p.parse_args(["bench-build", "--input", "a.pdf", "--out", "o", "--zh-chars", "150-600", "--en-chars", "250,500"])
    assert c.zh_chars == [150, 600] and c.en_chars == [250, 500]
    w = p.parse_args(["eval", "--gt-dir", "g", "--out", "o", "--reference", "identity", "--workers", "2"])
    assert w.workers == 2 and w.ned_text == "engine"
    n = p.parse_args(["eval", "--gt-dir", "g", "--out", "o", "--reference", "identity", "--ned-text", "normalised"])
    assert n.ned_text == "normalised"
    with pytest.raises(SystemExit):
        p.parse_args(["eval", "--gt-dir", "g", "--out", "o", "--reference", "identity", "--ned-text", "raw"])


@pytest.mark.slow
def test_workers_give_the_same_results(gt_dir, tmp_path):
    one = evaluate(gt_dir, tmp_path / "one", reference="bicubic8", use_cache=False)
    two = evaluate(gt_dir, tmp_path / "two", reference="bicubic8", use_cache=False, workers=2)
    assert one == two and one["num_samples"] == 2
    assert read_jsonl(tmp_path / "one" / "details.jsonl") == read_jsonl(tmp_path / "two" / "details.jsonl")
