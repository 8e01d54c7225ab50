"""Hostile and broken config files: each is refused quickly with one line naming the file (and line)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from textinfuse.configio import MAX_CONFIG_BYTES, ConfigError, apply_overrides, load, read_mapping

ROOT = Path(__file__).resolve().parent.parent


def _bomb(levels: int = 9) -> str:
    """A 'billion laughs' YAML: 10**levels strings from a few hundred bytes (9 levels: gigabytes once
    copied, which configio.load does as JSON)."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def _flow_bomb(levels: int = 9) -> str:
    """The same bomb as one flow sequence, as it could be typed after `--set key=`."""
    items = ['&a0 ["x","x","x","x","x","x","x","x","x","x"]']
    items += [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


def _refused(path: Path, *needles: str) -> str:
    with pytest.raises(ConfigError) as e:
        read_mapping(path)
    msg = str(e.value)
    assert str(path) in msg and "\n" not in msg
    for n in needles:
        assert n in msg, msg
    return msg


def test_alias_bomb_is_refused_quickly_naming_file_and_line(tmp_path):
    from pipelines.render_job import RenderJobConfig

    p = tmp_path / "bomb.yaml"
    p.write_text(_bomb())
    assert p.stat().st_size < 500
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as e:
        load(RenderJobConfig, p)  # the full path a CLI run takes
    assert time.monotonic() - t0 < 2
    assert str(p) in str(e.value) and "line 2" in str(e.value) and "alias" in str(e.value)


def test_alias_bomb_in_a_set_value_is_refused():
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="alias"):
        apply_overrides({}, ["render.fonts.dirs=" + _flow_bomb()])
    with pytest.raises(ConfigError, match="alias"):
        apply_overrides({}, ["seed=[&a [1, 1], *a, *a]"])
    assert time.monotonic() - t0 < 2


@pytest.mark.parametrize("text, key, line", [
    ("seed: 1\nnum_samples: 3\nseed: 2\n", "'seed'", "line 3"),
    ("render:\n  width: 64\n  width: 128\n", "'width'", "line 3"),
    ("render: {width: 64, width: 128}\n", "'width'", "line 1"),
])
def test_duplicate_yaml_keys_are_refused_naming_key_file_and_line(tmp_path, text, key, line):
    p = tmp_path / "dup.yaml"
    p.write_text(text)
    _refused(p, "duplicate key", key, line)


def test_duplicate_set_value_keys_are_refused():
    with pytest.raises(ConfigError, match="duplicate key 'k'"):
        apply_overrides({}, ["a={k: 1, k: 2}"])


@pytest.mark.parametrize("text, needles", [
    ("seed = 1\nseed = 2\n", ("line 2", "seed = 2")),
    ("[render]\nwidth = 64\n[render]\nheight = 64\n", ("line 3", "render")),
])
def test_duplicate_toml_keys_and_tables_are_refused_naming_file_and_line(tmp_path, text, needles):
    p = tmp_path / "dup.toml"
    p.write_text(text)
    _refused(p, "not valid TOML", *needles)


def test_bundled_configs_still_load():
    files = sorted((ROOT / "configs").glob("*/*.yaml"))
    assert len(files) >= 8
    for f in files:
        assert read_mapping(f), f


def test_python_tags_are_refused_and_never_run(tmp_path):
    marker = tmp_path / "ran"
    p = tmp_path / "tag.yaml"
    p.write_text(f'seed: !!python/object/apply:os.system ["touch {marker}"]\n')
    _refused(p, "line 1", "python/object")
    assert not marker.exists()


def test_non_json_values_and_keys_are_refused_naming_the_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("render:\n  text:\n    corpora: 2024-01-01\n")
    _refused(p, "render.text.corpora", "date")
    p.write_text("off: 1\n")  # YAML 1.1 reads `off` as false
    _refused(p, "key False is not a string")
    p.write_text("seed: !!binary aGVsbG8=\n")
    _refused(p, "seed", "bytes")


def test_big_binary_and_special_files_get_one_line(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * MAX_CONFIG_BYTES + "\n")
    _refused(big, "larger than 1 MiB")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfes\x00e\x00e\x00d\x00")
    _refused(binary, "not UTF-8")
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"seed: 1\x00\n")
    _refused(nul, "not valid YAML at line 1")
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    _refused(folder, "a folder")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    _refused(fifo, "not a regular file")  # would block forever waiting for a writer
    assert time.monotonic() - t0 < 1
    _refused(tmp_path / "missing.yaml", "cannot read config")


def test_deep_nesting_is_refused(tmp_path):
    for suffix, fmt in ((".yaml", "x: {}\n"), (".toml", "x = {}\n")):
        p = tmp_path / f"deep{suffix}"
        p.write_text(fmt.format("[" * 5000 + "]" * 5000))
        _refused(p, "nested too deeply")


def test_a_bom_is_not_part_of_the_config(tmp_path):
    p = tmp_path / "bom.toml"
    p.write_bytes("\ufeffseed = 3\n".encode())
    assert read_mapping(p) == {"seed": 3}


def test_python_310_falls_back_to_tomli(tmp_path):
    """Without tomllib (Python 3.10) configio parses TOML with tomli (a stand-in module here)."""
    (tmp_path / "tomli.py").write_text("TOMLDecodeError = ValueError\ndef loads(s):\n    return {'via': 'tomli'}\n")
    code = ("import sys; sys.modules['tomllib'] = None\n"
            "from textinfuse import configio\n"
            "print(configio.tomllib.loads('')['via'])")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "tomli", out.stderr
