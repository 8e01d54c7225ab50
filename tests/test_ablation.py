"""`textinfuse ablate` on a tiny budget: real render, filter, training and OCR evaluation; two arms, a few
steps. The figures live in the benchmark (README), never here: these tests check the outputs' shape, that
arms differ only in their data, resume, and refusals."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

pytest.importorskip("torch")

from ablation.config import load_ablation  # noqa: E402
from ablation.run import FolderInUse, run_ablation  # noqa: E402
from render_engine.paths import bundled_backgrounds  # noqa: E402
from textinfuse.configio import ConfigError, to_dict  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# what makes the plain-text source synthetic's samples on flat white: the sheet white on white, no effects
PLAIN = ["render.effects.strength=0", "render.layout.paper_white=[255, 255]", "render.layout.paper_tint=0",
         "render.layout.paper_opacity=[1.0, 1.0]"]


def tiny_config(root: Path, **changes) -> Path:
    """A tiny ablation: 3 background photos, 12 rendered samples at 64 px, 3 + 3 steps at 32 px."""
    photos = root / "photos"
    photos.mkdir(exist_ok=True)
    for p in sorted(bundled_backgrounds().glob("lomiri-*.jpg"))[:3]:
        shutil.copy(p, photos / p.name)
    text = root / "docs"
    text.mkdir(exist_ok=True)
    page = np.asarray(Image.open(REPO / "tests/fixtures/documents/debian-reference-zh-cn-p6.png").convert("RGB"))
    Image.fromarray(page[200:328, 100:228]).save(text / "doc-a.png")
    Image.fromarray(page[400:528, 100:228]).save(text / "doc-b.png")
    evphotos = root / "eval-photos"
    evphotos.mkdir(exist_ok=True)
    Image.open(photos / sorted(p.name for p in photos.iterdir())[0]).convert("RGB").resize((64, 64)).save(
        evphotos / "p.png")
    render = ["num_samples=12", "output.samples_per_shard=6", "render.width=64", "render.height=64",
              "render.levels=[1]", "render.text.char_px=[8, 32]", "render.text.level_scale=1.2"]
    cfg = {
        "seeds": 1,
        "train": {"model": "tiny-f8c16", "device": "cpu",
                  "data": {"batch_size": 2, "workers": 0, "shuffle_buffer": 4, "holdout_shards": 0},
                  "eval": {"every": 1000, "num_samples": 2, "resolution": 32, "ned_samples": 0},
                  "log_every": 2, "ckpt_every": 3},
        "stages": [{"name": "base", "steps": 3, "resolution": 32, "lr": 1e-3},
                   {"name": "infuse", "steps": 3, "resolution": 32, "lr": 1e-3}],
        "sources": {"general": {"kind": "filter", "inputs": ["photos"], "set": ["text_density.enabled=false"]},
                    "synthetic": {"kind": "render", "set": render},
                    "plain_text": {"kind": "render", "set": [*render, *PLAIN], "flat": ["#ffffff"]}},
        "arms": {"general": {"base": {"general": 1}, "infuse": {"general": 1}},
                 "synthetic": {"base": {"general": 1}, "infuse": {"general": 0.5, "synthetic": 0.5}},
                 "plain-text": {"base": {"general": 1}, "infuse": {"general": 0.5, "plain_text": 0.5}}},
        "eval": {"text": ["docs"], "photos": ["eval-photos"], "grid_crops": 2, "workers": 1},
    }
    cfg.update(changes)
    path = root / "ablation.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def ablated(tmp_path_factory):
    """The CLI, as a user runs it: two arms of the tiny config, data jobs in-process."""
    from textinfuse.cli import main

    root = tmp_path_factory.mktemp("ablate")
    path = tiny_config(root)
    out = root / "out"
    assert main(["ablate", "--config", str(path), "--out", str(out), "--arms", "general,synthetic",
                 "--executor", "local"]) == 0
    return load_ablation(path), out, json.loads((out / "results.json").read_text())


def test_outputs_have_the_documented_shape(ablated):
    cfg, out, res = ablated
    saved = res
    assert saved["arms"].keys() == {"general", "synthetic"}
    for arm in saved["arms"].values():
        for key in ("NED", "NED_seeds", "PSNR", "SSIM", "PSNR_photos", "steps", "cpu_seconds"):
            assert key in arm
        assert arm["steps"] == 6 and len(arm["NED_seeds"]) == 1 and arm["cpu_seconds"] > 0
        assert 0 <= arm["NED"] <= 1 and 5 < arm["PSNR_photos"] < 60
    assert saved["config"]["arms"].keys() == cfg.arms.keys()
    g = saved["goal"]  # plain-text was not run: its check is left out, the other two are made
    assert g["ned_gain_over_baseline"] == pytest.approx(saved["arms"]["synthetic"]["NED"] - saved["arms"]["general"]["NED"])
    assert "photo_psnr_ok" in g and "contrast_ok" not in g and "paired_contrast" not in g
    p = g["paired_baseline"]  # crop by crop over the run's real crops: its mean is the NED gain (all crops valid)
    if p is not None:  # None only when OCR read no text in any original (then NED is None too)
        assert p["crops"] >= 1 and p["seeds"] == 1 and p["ci95"][0] <= p["mean"] <= p["ci95"][1]
    md = (out / "results.md").read_text()
    assert "| `general` |" in md and "| `synthetic` |" in md and "photo PSNR" in md
    with Image.open(out / "grid.png") as g:  # 2 crops x (original + 2 arms)
        assert g.width > 3 * 192 and g.height > 2 * 192
    for arm in ("general", "synthetic"):
        run = out / "runs" / arm / "seed_0"
        assert (run / "ckpt").is_dir() and len(list((run / "grid").glob("*.png"))) == 2
        assert json.loads((run / "eval" / "docs" / "results.json").read_text())["num_samples"] == 2


def test_arms_differ_only_in_their_data(ablated):
    _, out, _ = ablated
    a, b = (yaml.safe_load((out / "runs" / arm / "seed_0" / "config.yaml").read_text()) for arm in ("general", "synthetic"))
    assert a["data"].pop("sources").keys() == {"general"}
    assert b["data"].pop("sources").keys() == {"general", "synthetic"}
    assert [s.pop("weights") for s in a["stages"]] != [s.pop("weights") for s in b["stages"]]
    assert a == b  # model, schedule, batch, resolution, seed, optimiser: the same


def test_resume_keeps_finished_runs_and_new_eval_sets_only_re_evaluate(ablated, tmp_path):
    cfg, out, _ = ablated
    trained = (out / "runs/general/seed_0/trained.json").read_text()
    ckpt = sorted(p.name for p in (out / "runs/general/seed_0/ckpt").iterdir())
    with pytest.raises(FolderInUse, match="--resume"):
        run_ablation(cfg, out, arms=["general"])
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(out.parent / "docs" / "doc-a.png", other / "doc-a.png")
    res = run_ablation(cfg, out, arms=["general"], eval_gt=[str(other)], resume=True)
    assert (out / "runs/general/seed_0/trained.json").read_text() == trained  # not trained again
    assert sorted(p.name for p in (out / "runs/general/seed_0/ckpt").iterdir()) == ckpt
    assert list(res["arms"]["general"]["NED_by_set"]) == ["other"]  # evaluated on the new set


def test_text_in_image_sets_are_reported_beside_the_documents_not_pooled_with_them(ablated, tmp_path):
    cfg, out, first = ablated
    screens = tmp_path / "screens"
    screens.mkdir()
    shutil.copy(out.parent / "docs" / "doc-b.png", screens / "s.png")
    with_images = replace(cfg, eval=replace(cfg.eval, images=(str(screens),)))
    res = run_ablation(with_images, out, arms=["general", "synthetic"], resume=True)
    for arm in ("general", "synthetic"):
        r, before = res["arms"][arm], first["arms"][arm]
        assert r["NED"] == before["NED"] and r["NED_by_set"] == before["NED_by_set"]  # documents unchanged
        assert list(r["NED_by_image_set"]) == ["screens"] and "NED_images_seeds" in r and "PSNR_images" in r
        assert r["NED_images"] == r["NED_by_image_set"]["screens"]
        assert "NED_images" not in before
    im = res["goal"]["images"]
    if res["arms"]["synthetic"]["NED_images"] is not None and res["arms"]["general"]["NED_images"] is not None:
        assert im["gain_over_baseline"] == pytest.approx(
            res["arms"]["synthetic"]["NED_images"] - res["arms"]["general"]["NED_images"])
    assert res["eval"]["images"] == [str(screens)]
    md = (out / "results.md").read_text()
    assert "NED screens (images)" in md and "## Real text in images (outside the goal)" in md
    run_ablation(cfg, out, arms=["general", "synthetic"], resume=True)  # back to the module's evaluation


def test_another_training_config_is_refused_in_the_same_folder(ablated):
    cfg, out, _ = ablated

    changed = replace(cfg, stages=({**cfg.stages[0], "steps": 4}, cfg.stages[1]))
    with pytest.raises(FolderInUse, match="another training recipe"):
        run_ablation(changed, out, arms=["general"], resume=True)
    reweighted = replace(cfg, arms={**cfg.arms, "synthetic": {"base": {"general": 1},
                                                               "infuse": {"general": 0.3, "synthetic": 0.7}}})
    with pytest.raises(FolderInUse, match="arm synthetic was trained with other data"):
        run_ablation(reweighted, out, arms=["synthetic"], resume=True)
    assert reweighted.arm_identity("general") == cfg.arm_identity("general")  # other arms' runs stay valid


def test_a_changed_resolved_data_config_invalidates_the_arm_even_with_the_same_spec(ablated):
    """A new render default changes what a source makes without changing its spec: the data job's config
    hash (recorded in the data's manifest) is part of the arm's identity."""
    cfg, out, _ = ablated
    import json

    arm = json.loads((out / "runs/synthetic/seed_0/arm.json").read_text())
    data = arm["data_config_hashes"]
    assert set(data) == set(cfg.arm_sources("synthetic")) and all(data.values())
    assert data["synthetic"] == json.loads((out / "data/synthetic/manifest.json").read_text())["config_hash"]
    assert arm["identity"] == cfg.arm_identity("synthetic", data)
    assert cfg.arm_identity("synthetic", {**data, "synthetic": "0" * 16}) != arm["identity"]
    from ablation.run import claim_run

    with pytest.raises(FolderInUse, match="resolved job configs"):
        claim_run(cfg, "synthetic", out / "runs/synthetic/seed_0", {**data, "synthetic": "0" * 16})


def test_plain_text_renders_on_flat_backgrounds(ablated):
    cfg, out, _ = ablated
    from ablation.data import build_source

    summary = build_source("plain_text", cfg.sources["plain_text"], out / "data" / "plain_text", None)
    assert summary["images"] == 12
    import webdataset as wds

    def read(name):
        urls = sorted(str(p) for p in (out / "data" / name).glob("*.tar"))
        return {s["__key__"]: s for s in wds.WebDataset(urls, shardshuffle=False)}

    plain, synthetic = read("plain_text"), read("synthetic")
    assert plain.keys() == synthetic.keys()
    for key, s in plain.items():
        im = np.asarray(Image.open(__import__("io").BytesIO(s["png"])).convert("RGB"))
        assert (im[0, 0] >= 250).all()  # white where no text is drawn
        # the same sample as synthetic's, without its photo: the arms differ in the background alone
        a, b = json.loads(s["json"]), json.loads(synthetic[key]["json"])
        assert [(ln["text"], ln["font"], ln["char_px"]) for ln in a["lines"]] == \
               [(ln["text"], ln["font"], ln["char_px"]) for ln in b["lines"]]
        assert a["background"]["source"] != b["background"]["source"]


@pytest.mark.parametrize("change, message", [
    ({"arms": {"a": {"base": {"general": 1}}}}, "exactly the stages"),
    ({"arms": {"a": {"base": {"nope": 1}, "infuse": {"general": 1}}}}, "not in sources"),
    ({"stages": [{"name": "base", "steps": 1, "weights": {"general": 1}}]}, "belong to the arms"),
    ({"train": {"model": "no-such-model", "seed": 3}}, "seeds"),
    ({"run_arms": ["general", "nope"]}, "run_arms: 'nope' is not an arm"),
    ({"sources": {"general": {"kind": "filter"}}}, "a filter source needs inputs"),
])
def test_bad_configs_are_refused_in_one_line(tmp_path, change, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        load_ablation(tiny_config(tmp_path, **change))


def test_unknown_arm_and_missing_eval_folder_are_named(tmp_path):
    cfg = load_ablation(tiny_config(tmp_path))
    with pytest.raises(ValueError, match="'nope' is not an arm"):
        run_ablation(cfg, tmp_path / "o", arms=["nope"])
    with pytest.raises(FileNotFoundError, match="evaluation folder"):
        run_ablation(cfg, tmp_path / "o", eval_gt=[str(tmp_path / "missing")])


def test_cli_help_and_shipped_configs_load():
    from textinfuse.cli import build_parser

    for name in ("cpu", "gpu"):
        cfg = load_ablation(REPO / "configs" / "ablation" / f"{name}.yaml")
        assert {"general", "real-text", "plain-text", "synthetic"} <= set(cfg.arms)
        plain, synthetic = cfg.sources["plain_text"], cfg.sources["synthetic"]
        # plain-text is synthetic's recipe and samples on flat white: nothing else may differ
        assert (plain.recipe, plain.flat) == (synthetic.recipe, ("#ffffff",))
        assert set(synthetic.set) <= set(plain.set) and set(plain.set) - set(synthetic.set) == set(PLAIN), name
        assert to_dict(cfg.train_config("general", 0, {n: "x" for n in cfg.sources}))["data"]["sources"]
    a = build_parser().parse_args(["ablate", "--config", "c.yaml", "--out", "o", "--arms", "general,synthetic",
                                   "--seeds", "1", "--eval-gt", "d1", "d2", "--resume"])
    assert (a.arms, a.seeds, a.eval_gt, a.resume) == ("general,synthetic", 1, ["d1", "d2"], True)


def test_paired_difference_is_crop_by_crop_and_seed_matched(tmp_path):
    from ablation.report import paired_difference

    neds = {("a", 0): [0.9, 0.8, 0.5], ("b", 0): [0.7, 0.8, 0.6], ("a", 1): [1.0, 0.6, 0.5], ("b", 1): [0.8, 0.7, 0.5]}
    for (arm, seed), vals in neds.items():
        d = tmp_path / "runs" / arm / f"seed_{seed}" / "eval" / "docs"
        d.mkdir(parents=True)
        rows = [{"file": f"c{i}.png", "gt_text": "x", "rec_text": "x", "ned": v} for i, v in enumerate(vals)]
        if arm == "a" and seed == 1:
            rows.append({"file": "only-here.png", "gt_text": "x", "rec_text": "", "ned": 0.0})  # unpaired: left out
        (d / "ned_details.json").write_text(json.dumps({"avg_ned": 0, "details": rows}))
    p = paired_difference(tmp_path, "a", "b", [0, 1], ["docs", "missing-set"])
    diffs = [0.2, 0.0, -0.1, 0.2, -0.1, 0.0]
    assert p["crops"] == 3 and p["seeds"] == 2
    assert p["mean"] == pytest.approx(sum(diffs) / 6)
    assert p["a_better"] == pytest.approx(2 / 6) and p["b_better"] == pytest.approx(2 / 6)
    assert p["ci95"][0] <= p["mean"] <= p["ci95"][1] and p["ci95"][0] >= -0.1 - 1e-9 and p["ci95"][1] <= 0.2 + 1e-9
    assert paired_difference(tmp_path, "a", "nope", [0], ["docs"]) is None
