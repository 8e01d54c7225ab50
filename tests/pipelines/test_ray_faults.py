"""The render job on real Ray: worker crashes, driver interrupts, identical bytes, no leftovers."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from pipelines.executors import RayExecutor
from pipelines.render_job import OutputConfig, RenderJobConfig, run_render
from pipelines.verify import verify
from render_engine.config import LayoutConfig, RenderConfig

# slow enough per shard (about a second: 100 dense pages) to be caught mid-shard
JOB = RenderJobConfig(seed=3, num_samples=600, render=RenderConfig(layout=LayoutConfig(page_prob=1.0)),
                      output=OutputConfig(samples_per_shard=100))


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    run_render(JOB, out)  # in-process reference
    return out


def same_shards(a, b):
    names = sorted(p.name for p in a.glob("*.tar"))
    assert names == sorted(p.name for p in b.glob("*.tar")) and len(names) == JOB.num_shards
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n


@pytest.mark.slow
def test_ray_output_is_identical_to_in_process(ray_cluster, clean_run, tmp_path):
    ex = RayExecutor()
    assert not ex.owned and ex.workers == 2
    man = run_render(JOB, tmp_path, executor=ex)
    assert not man["failed_shards"]
    same_shards(clean_run, tmp_path)


@pytest.mark.slow
def test_worker_killed_mid_shard(ray_cluster, clean_run, tmp_path):
    result = {}
    t = threading.Thread(target=lambda: result.update(run_render(JOB, tmp_path, executor=RayExecutor())))
    t.start()
    victim = None
    deadline = time.time() + 120
    while victim is None and time.time() < deadline and t.is_alive():
        parts = list((tmp_path / "_tmp").glob("*.tar.*.part")) if (tmp_path / "_tmp").exists() else []
        if parts:  # a worker is writing a shard: the temp name carries its pid
            victim = int(parts[0].name.split(".")[-2])
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.02)
    t.join(timeout=300)
    assert victim is not None, "no shard was caught in progress"
    assert not result["failed_shards"] and result["totals"]["samples"] == JOB.num_samples
    same_shards(clean_run, tmp_path)
    assert verify(tmp_path).ok


@pytest.mark.slow
def test_driver_interrupted_then_resumed(ray_cluster, clean_run, tmp_path):
    cfg = tmp_path / "job.json"
    from textinfuse.configio import to_dict

    cfg.write_text(json.dumps(to_dict(JOB)))  # JSON is YAML
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "textinfuse.cli", "render", "--out", str(out), "--config", str(cfg),
           "--address", ray_cluster]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None and not list(out.glob("*.stats.json")):
        time.sleep(0.05)
    done_before = len(list(out.glob("*.stats.json")))
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "run the same command again to resume" in err
    assert 1 <= done_before and len(list(out.glob("*.tar"))) < JOB.num_shards
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    same_shards(clean_run, out)
    assert verify(out).ok
    keys = set()
    import webdataset as wds

    for s in wds.WebDataset(sorted(str(x) for x in out.glob("*.tar")), shardshuffle=False):
        assert s["__key__"] not in keys
        keys.add(s["__key__"])
    assert len(keys) == JOB.num_samples
