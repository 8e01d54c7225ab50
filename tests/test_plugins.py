"""Plugins really are one file: a module outside the project adds a filter and an effect, and both are
configured, run, reported, rescored and re-rendered without editing anything else."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from render_engine import plugins

PLUGIN = textwrap.dedent('''
    """A user's plugin: one filter (too dark images) and one effect (a colour cast)."""

    from dataclasses import dataclass

    import numpy as np

    from pipelines.filters.base import Filter, Rule
    from render_engine.effects.base import Effect


    @dataclass(frozen=True)
    class BrightnessConfig:
        enabled: bool = True
        min_mean: float = 30.0  # grey levels


    class Brightness(Filter):
        name = "brightness"
        order = 5  # after validity, before clarity
        config = BrightnessConfig
        rules = (Rule("mean", "min_mean", "min", "too_dark"),)

        def score(self, image, info, cfg):
            return {"mean": round(float(image.mean()), 3)}


    class Tint(Effect):
        name = "tint"
        stage = "image"
        p_by_level = (1.0, 1.0, 1.0, 1.0, 1.0)

        def sample(self, rng, ctx):
            return {"rgb": [int(v) for v in rng.integers(5, 40, size=3)]}

        def apply(self, layers, params):
            layers.image = np.minimum(layers.image + np.asarray(params["rgb"], np.float32), np.float32(255))
''')
BUILTIN_EFFECTS = ("plate", "stroke", "shadow", "rotate", "perspective", "blur", "noise", "jpeg")
OFF = ["clarity.enabled=false", "text_density.enabled=false"]  # flat test images: only our filter decides


@pytest.fixture(scope="module")
def plugin_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("plugins") / "my_plugin.py"
    path.write_text(PLUGIN)
    return path


@pytest.fixture(scope="module")
def plugin(plugin_file):
    """The plugin loaded into this process (as `TEXTINFUSE_PLUGINS` would), and unloaded afterwards."""
    from pipelines import filter_job

    before = filter_job.FilterConfig
    mod = plugins.load(plugin_file)
    yield mod
    plugins.unload(mod)
    from render_engine.config import EffectsConfig

    assert filter_job.FilterConfig is before and EffectsConfig().enabled == BUILTIN_EFFECTS


def grey_pngs(folder, means=(15, 50, 90, 140)):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for m in means:
        a = np.clip(rng.normal(m, 4, (160, 160, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(folder / f"grey{m:03d}.png")
    return folder


def by_name(out):
    recs = [json.loads(ln) for ln in (out / "scores.jsonl").read_text().splitlines()]
    return {r["source"]["path"].rsplit("/", 1)[1]: r for r in recs}


def test_builtin_defaults_are_what_they_were():
    """The registry-built defaults keep the names and order (so default configs hash as before)."""
    from pipelines.filter_job import FilterConfig
    from render_engine.config import EffectsConfig
    from textinfuse.configio import to_dict

    assert EffectsConfig().enabled == BUILTIN_EFFECTS
    assert list(to_dict(FilterConfig())) == ["name", "files_per_task", "validity", "clarity", "text_density"]
    assert FilterConfig().clarity.max_ringing == 11.0 and FilterConfig().text_density.min_chars == 30


def test_a_plugin_filter_is_configured_run_reported_and_rescored(plugin_file, plugin, tmp_path, monkeypatch):
    from pipelines import filter_job
    from pipelines.filter_report import filter_report
    from textinfuse.configio import ConfigError, load

    # configured: its section, with its thresholds, is in the job config (and `--set` reaches it)
    cfg = load(filter_job.FilterConfig, None, OFF + ["brightness.min_mean=40"])
    assert cfg.brightness == plugin.BrightnessConfig(min_mean=40.0)
    assert [f.name for f in filter_job.ordered()] == ["validity", "brightness", "clarity", "text_density"]
    with pytest.raises(ConfigError, match="brightness.max_mean"):
        load(filter_job.FilterConfig, None, ["brightness.max_mean=1"])

    # run: the CLI in a fresh process that finds the plugin the way users give it, TEXTINFUSE_PLUGINS
    inputs, out = grey_pngs(tmp_path / "in"), tmp_path / "out"
    sets = [a for s in OFF + ["brightness.min_mean=40"] for a in ("--set", s)]
    env = {**os.environ, plugins.ENV: str(plugin_file)}
    r = subprocess.run([sys.executable, "-m", "textinfuse.cli", "filter", "--input", str(inputs), "--out", str(out),
                        "--executor", "local", *sets], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    man = json.loads((out / "manifest.json").read_text())
    assert man["config"]["brightness"] == {"enabled": True, "min_mean": 40.0}
    assert man["totals"]["reasons"] == {"kept": 3, "too_dark": 1}
    recs = by_name(out)
    assert recs["grey015.png"]["reason"] == "too_dark" and "clarity" not in recs["grey015.png"]
    assert 85 < recs["grey090.png"]["brightness"]["mean"] < 95 and recs["grey090.png"]["keep"]

    # reported: its score's histogram with the threshold, and examples either side of it
    filter_report(out, tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert "<h2>brightness.mean (≥ 40)" in html and "failing, nearest the threshold" in html

    # rescored: a changed threshold re-decides from the recorded scores, without scoring again
    def boom(*a, **k):
        raise AssertionError("scored again during a rescore that had every score it needed")

    monkeypatch.setattr(plugin.Brightness, "score", boom)
    stricter = load(filter_job.FilterConfig, None, OFF + ["brightness.min_mean=100"])
    man = filter_job.run_filter([str(inputs)], stricter, tmp_path / "again", rescore_from=out)
    assert man["totals"]["reasons"] == {"kept": 1, "too_dark": 3}
    assert by_name(tmp_path / "again")["grey090.png"]["brightness"] == recs["grey090.png"]["brightness"]


def test_a_plugin_effect_is_enabled_applied_and_rerendered_exactly(plugin, tmp_path):
    from pipelines.render_job import OutputConfig, RenderJobConfig, encode, run_render
    from render_engine.config import RenderConfig
    from render_engine.engine import Renderer

    render = RenderConfig(width=128, height=96, levels=(2,))
    assert render.effects.enabled == (*BUILTIN_EFFECTS, "tint")  # active without a config edit
    job = RenderJobConfig(seed=3, num_samples=3, render=render, output=OutputConfig(samples_per_shard=3))
    man = run_render(job, tmp_path)
    assert man["config"]["render"]["effects"]["enabled"][-1] == "tint"
    samples = list(wds.WebDataset(str(tmp_path / "textinfuse-000000.tar"), shardshuffle=False))
    assert len(samples) == 3
    again = Renderer(render)
    for s in samples:
        label = json.loads(s["json"])
        tint = [e for e in label["effects"] if e["name"] == "tint"]
        assert len(tint) == 1 and len(tint[0]["params"]["rgb"]) == 3  # applied, its params recorded
        img = again.render(label["params"]).image
        assert encode(img, job.output) == s["png"]  # re-rendered from the label: the same bytes
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(s["png"])).convert("RGB")), img)


def test_a_plugin_cannot_take_a_builtin_name(tmp_path):
    from pipelines.filters import REGISTRY as FILTERS
    from render_engine.effects import REGISTRY as EFFECTS

    bad = tmp_path / "clash.py"
    bad.write_text("from render_engine.effects.blur import Blur\n\n\nclass MyBlur(Blur):\n    name = 'blur'\n")
    before = (dict(EFFECTS), dict(FILTERS))
    with pytest.raises(ValueError, match="'blur' is taken by render_engine.effects.blur"):
        plugins.load(bad)
    assert (dict(EFFECTS), dict(FILTERS)) == before and "textinfuse_plugin_clash" not in sys.modules
