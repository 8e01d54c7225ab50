import json
import subprocess
import sys


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "textinfuse.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_render_flags_config_and_set(tmp_path):
    cfg = tmp_path / "job.yaml"
    cfg.write_text("render:\n  layout:\n    page_prob: 1.0\noutput:\n  name: demo\n")
    r = run("render", "--out", str(tmp_path / "o"), "--num-samples", "3", "--seed", "5", "--size", "128x96",
            "--langs", "zh", "--char-px", "10-12", "--level", "2-3", "--format", "jpg", "--samples-per-shard", "2",
            "--config", str(cfg), "--set", "render.effects.strength=0")
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "o" / "manifest.json").read_text())
    c = man["config"]
    assert c["seed"] == 5 and c["render"]["width"] == 128 and c["render"]["height"] == 96
    assert c["render"]["levels"] == [2, 3] and c["render"]["text"]["char_px"] == [10, 12]
    assert c["output"]["format"] == "jpg" and c["output"]["name"] == "demo" and c["render"]["layout"]["page_prob"] == 1.0
    assert sorted(p.name for p in (tmp_path / "o").glob("*.tar")) == ["demo-000000.tar", "demo-000001.tar"]
    assert "samples/s" in r.stderr and "ETA" in r.stderr


def test_bad_values_give_one_line_errors(tmp_path):
    r = run("render", "--out", str(tmp_path), "--set", "render.text.langs=[fr]")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "fr" in r.stderr
    r = run("render", "--out", str(tmp_path), "--set", "render.nope=1")
    assert r.returncode == 2 and "unknown key" in r.stderr
    r = run("render", "--out", str(tmp_path), "--level", "5", "--char-px", "12-20")
    assert r.returncode == 2 and "level 5" in r.stderr


def test_repeated_input_flags_add_up():
    from textinfuse.cli import build_parser

    args = build_parser().parse_args(["filter", "--input", "a", "--input", "b", "c", "--out", "o"])
    assert args.input == ["a", "b", "c"]
    args = build_parser().parse_args(["bench-build", "--input", "x.pdf", "--input", "y", "--out", "o"])
    assert args.input == ["x.pdf", "y"]
