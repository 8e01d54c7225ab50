"""Shared fixtures: one bundled-data renderer and one tiny rendered dataset per test session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# The per-user caches (web fonts, evaluation OCR and FID) go to a folder of this test session, never to
# the user's ~/.cache; set before anything starts (subprocesses and Ray workers inherit it).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="textinfuse-test-cache-")

from render_engine.config import RenderConfig


@pytest.fixture(scope="session")
def renderer():
    from render_engine.engine import Renderer

    return Renderer(RenderConfig())


@pytest.fixture(scope="session")
def tiny_job():
    from pipelines.render_job import OutputConfig, RenderJobConfig

    return RenderJobConfig(seed=7, num_samples=12, output=OutputConfig(samples_per_shard=5))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, tiny_job) -> Path:
    from pipelines.render_job import run_render

    out = tmp_path_factory.mktemp("tiny")
    run_render(tiny_job, out)
    return out


def subset_font(src: Path, dst: Path, chars: str) -> Path:
    """A deliberately partial font: `src` cut down to `chars` (fontTools subsetter)."""
    from fontTools import subset

    opts = subset.Options()
    opts.name_IDs = ["*"]
    font = subset.load_font(str(src), opts)
    sub = subset.Subsetter(opts)
    sub.populate(unicodes=[ord(c) for c in chars])
    sub.subset(font)
    subset.save_font(font, str(dst), opts)
    return dst


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray (2 CPUs) for the whole test session; yields its address. At the end it is shut
    down and every process it started is checked gone (and killed by pid if not)."""
    import psutil
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    address = ray.get_runtime_context().gcs_address
    yield address
    procs = [p for p in psutil.Process().children(recursive=True) if "ray" in " ".join(p.cmdline()).lower()]
    ray.shutdown()
    _, alive = psutil.wait_procs(procs, timeout=20)
    for p in alive:
        p.kill()
    assert not alive, f"Ray processes left after shutdown: {[p.pid for p in alive]}"
