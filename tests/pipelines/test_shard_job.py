"""The shard-job skeleton on a toy job (real shards, real files, the local executor and real Ray): its one
resume / refuse / overwrite rule, and the executors' one retry pass."""

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import webdataset as wds

from pipelines.executors import LocalExecutor, RayExecutor
from pipelines.jobdir import FolderInUse, Identity
from pipelines.shard_job import ShardJob, Work, run_shards
from pipelines.shards import ShardWriter, sample_key, shard_name, stats_name
from textinfuse.configio import config_hash


@dataclass(frozen=True)
class ToyConfig:
    seed: int = 0
    sizes: tuple[int, ...] = (3, 2, 4)


def toy_task(shared, index):
    """One toy shard: `sizes[index]` text samples, a companion file, its stats last. Every attempt is logged
    on disk (workers are other processes); shard `i` raises on its first `fail[i]` attempts."""
    out, logs, seed, sizes, h, fail = shared
    size = sizes[index]
    logs = Path(logs)
    with open(logs / f"{index}.attempts", "a") as f:
        f.write("x")
    with open(logs / "order", "a") as f:
        f.write(f"{index}\n")
    attempts = (logs / f"{index}.attempts").stat().st_size
    if attempts <= fail.get(index, 0):
        raise ValueError(f"boom {index}\nsecond line of the message")
    out = Path(out)
    with ShardWriter(out, "toy", index) as w:
        for i in range(size):
            w.write({"__key__": sample_key(index, i), "txt": f"{seed} {index} {i}"})
        n, sha = w.finish()
        stats = {"shard": index, "file": shard_name("toy", index), "count": w.count, "bytes": n, "sha256": sha,
                 "config_hash": h}
        (out / "scores").mkdir(exist_ok=True)
        w.publish(stats, [(out / companion(index), f"notes {index}\n".encode())])
    return stats


def companion(index: int) -> str:
    return f"scores/part-{index:06d}.jsonl"  # a name jobdir knows as a job's output (removed by overwrite)


class Toy(ShardJob):
    unit, size_field = "items", "count"

    def __init__(self, out: Path, logs: Path, cfg: ToyConfig = ToyConfig(), fail: dict[int, int] | None = None):
        logs.mkdir(exist_ok=True)
        self.config, self.task = cfg, toy_task
        self.identity = Identity("toy", "toy", {"seed": cfg.seed, "sizes": list(cfg.sizes)})
        self.config_hash = config_hash(self.identity.fields)
        self.work = [Work(i, n, i) for i, n in enumerate(cfg.sizes)]
        self.shared = (str(out), str(logs), cfg.seed, cfg.sizes, self.config_hash, fail or {})

    def companions(self, index: int) -> tuple[str, ...]:
        return (companion(index),)

    def finish(self, out: Path, done: list[dict]) -> dict:
        return {"totals": {"items": sum(s["count"] for s in done)}}

    def summary(self, manifest: dict, out: Path) -> str:
        return f"{manifest['totals']['items']} toy items -> {out}"


def attempts(logs: Path) -> dict[int, int]:
    return {int(p.stem): p.stat().st_size for p in logs.glob("*.attempts")}


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_a_run_publishes_every_shard_and_the_common_manifest(tmp_path):
    cfg = ToyConfig(sizes=(3, 2, 4))
    man = run_shards(Toy(tmp_path / "out", tmp_path / "logs", cfg), tmp_path / "out")
    assert {k: man[k] for k in ("kind", "num_shards", "failed_shards", "totals")} == {
        "kind": "toy", "num_shards": 3, "failed_shards": [], "totals": {"items": 9}}
    assert man["config"] == {"seed": 0, "sizes": [3, 2, 4]} and man["config_hash"] == Toy(tmp_path, tmp_path / "l").config_hash
    assert [s["shard"] for s in man["shards"]] == [0, 1, 2]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == man
    tars = sorted(str(p) for p in (tmp_path / "out").glob("toy-*.tar"))
    keys = [s["__key__"] for s in wds.WebDataset(tars, shardshuffle=False)]  # the standard reader reads them
    assert len(keys) == 9 and keys[0] == "000000_000000"
    assert not list((tmp_path / "out" / "_tmp").iterdir())


def test_resume_redoes_exactly_the_shards_not_done(tmp_path, caplog):
    """Done = stats file present with this config hash and this shard's size, tar and companions in place."""
    out, cfg = tmp_path / "out", ToyConfig(sizes=(2, 2, 2, 2, 2, 3))
    run_shards(Toy(out, tmp_path / "ref", cfg), out)
    reference = snapshot(out)
    (out / "_tmp" / "toy-000001.tar.999.part").write_bytes(b"killed mid-shard")

    def edit_stats(i, **kv):
        p = out / stats_name("toy", i)
        p.write_text(json.dumps({**json.loads(p.read_text()), **kv}))

    (out / stats_name("toy", 1)).unlink()  # killed after its tar moved into place, before its stats
    edit_stats(2, config_hash="another config's")
    (out / companion(3)).unlink()
    (out / shard_name("toy", 4)).unlink()
    edit_stats(5, count=2)  # a shard of another size
    untouched = (out / shard_name("toy", 0)).stat().st_mtime_ns
    caplog.set_level(logging.INFO)
    man = run_shards(Toy(out, tmp_path / "logs", cfg), out)
    assert attempts(tmp_path / "logs") == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1}
    assert "resuming: 1 of 6 shards already done" in caplog.text
    assert (out / shard_name("toy", 0)).stat().st_mtime_ns == untouched
    assert not man["failed_shards"] and len(man["shards"]) == 6
    now = snapshot(out)
    for name, data in reference.items():  # the redone shards are the same bytes
        if name.endswith(".tar") or name.startswith("scores/"):
            assert now[name] == data, name
    assert not list((out / "_tmp").iterdir())
    run_shards(Toy(out, tmp_path / "again", cfg), out)  # all done now: nothing runs
    assert attempts(tmp_path / "again") == {}


def test_another_identity_is_refused_untouched_and_overwrite_removes_only_the_old_outputs(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file")
    run_shards(Toy(out, tmp_path / "logs", ToyConfig(sizes=(1, 1, 1))), out)
    before = snapshot(out)
    with pytest.raises(FolderInUse, match=r"seed: 0 -> 1.*--overwrite"):
        run_shards(Toy(out, tmp_path / "other", ToyConfig(seed=1, sizes=(1, 1, 1))), out)
    with pytest.raises(FolderInUse, match=r"sizes: \[1, 1, 1\] -> \[2\]"):
        run_shards(Toy(out, tmp_path / "other", ToyConfig(sizes=(2,))), out)
    assert snapshot(out) == before and attempts(tmp_path / "other") == {}  # nothing ran, nothing changed
    man = run_shards(Toy(out, tmp_path / "over", ToyConfig(seed=1, sizes=(2,))), out, overwrite=True)
    assert attempts(tmp_path / "over") == {0: 1}  # shard 0 of the old run is not taken as done
    assert sorted(snapshot(out)) == ["job.json", "manifest.json", "notes.txt", companion(0), "toy-000000.stats.json",
                                     "toy-000000.tar"]
    assert (out / "notes.txt").read_text() == "the user's own file" and man["totals"] == {"items": 2}


@pytest.fixture(params=["local", "ray"])
def executor(request):
    if request.param == "local":
        yield LocalExecutor()
        return
    request.getfixturevalue("ray_cluster")
    import ray.cloudpickle

    module = sys.modules[__name__]  # the workers cannot import this test module: send the toy task by value
    ray.cloudpickle.register_pickle_by_value(module)
    try:
        yield RayExecutor()
    finally:
        ray.cloudpickle.unregister_pickle_by_value(module)


def test_a_task_that_raises_runs_once_more_after_all_the_others(executor, tmp_path, caplog):
    cfg = ToyConfig(sizes=(2, 2, 2, 2))
    run_shards(Toy(tmp_path / "clean", tmp_path / "clean-logs", cfg), tmp_path / "clean")
    out, logs = tmp_path / "out", tmp_path / "logs"
    caplog.set_level(logging.INFO)
    man = run_shards(Toy(out, logs, cfg, fail={1: 1, 2: 99}), out, executor=executor)
    assert attempts(logs) == {0: 1, 1: 2, 2: 2, 3: 1}  # never a third attempt
    order = (logs / "order").read_text().split()
    assert sorted(order[:4]) == ["0", "1", "2", "3"] and sorted(order[4:]) == ["1", "2"]  # retries come last
    assert man["failed_shards"] == [{"shard": 2, "reason": "ValueError: boom 2"}]  # one line, type and reason
    assert "task 1 failed, will retry at the end: ValueError: boom 1" in caplog.text
    assert "shard 2 failed: ValueError: boom 2" in caplog.text
    assert [s["shard"] for s in man["shards"]] == [0, 1, 3]
    assert not (out / shard_name("toy", 2)).exists() and not (out / stats_name("toy", 2)).exists()
    for i in (0, 1, 3):  # the retried shard is the same bytes as a clean run's
        assert (out / shard_name("toy", i)).read_bytes() == (tmp_path / "clean" / shard_name("toy", i)).read_bytes()
    assert not list((out / "_tmp").iterdir())
    man = run_shards(Toy(out, tmp_path / "resume", cfg), out, executor=executor)  # the rerun redoes only shard 2
    assert attempts(tmp_path / "resume") == {2: 1} and not man["failed_shards"] and len(man["shards"]) == 4
