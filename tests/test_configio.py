from dataclasses import dataclass, field
from typing import Literal

import pytest

from render_engine.config import RenderConfig
from textinfuse.configio import ConfigError, apply_overrides, config_hash, from_dict, load, to_dict


@dataclass(frozen=True)
class Inner:
    n: int = 1
    xs: tuple[float, ...] = (1.0,)
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)


def test_nested_values_convert_and_roundtrip():
    o = from_dict(Outer, {"name": "y", "inner": {"n": 3, "xs": [1, 2.5], "mode": "b"}})
    assert o == Outer("y", Inner(3, (1.0, 2.5), "b"))
    assert from_dict(Outer, to_dict(o)) == o


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"nmae": "y"}, "unknown key nmae"),
        ({"inner": {"n": "3"}}, "inner.n: expected an integer"),
        ({"inner": {"n": True}}, "inner.n: expected an integer"),
        ({"inner": {"mode": "c"}}, "inner.mode: 'c' is not one of"),
        ({"inner": {"xs": "1,2"}}, "inner.xs: expected a list"),
        ({"inner": 5}, "inner: expected a section"),
    ],
)
def test_bad_values_name_the_key(data, needle):
    with pytest.raises(ConfigError) as e:
        from_dict(Outer, data)
    assert needle in str(e.value)


def test_overrides_parse_yaml_values_and_nest():
    d = apply_overrides({"a": {"b": 1}}, ["a.b=2", "a.c=[1, 2]", "d=true", "e=hello"])
    assert d == {"a": {"b": 2, "c": [1, 2]}, "d": True, "e": "hello"}
    with pytest.raises(ConfigError):
        apply_overrides({}, ["novalue"])


def test_render_config_file_errors_name_the_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("text:\n  char_px: [3, 40]\n")
    with pytest.raises(ConfigError) as e:
        load(RenderConfig, p)
    assert str(p) in str(e.value) and "text.char_px" in str(e.value)
    p.write_text("levels: [5]\ntext:\n  char_px: [12, 20]\n")
    with pytest.raises(ConfigError, match="level 5"):
        load(RenderConfig, p)
    p.write_text("width: [oops\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(RenderConfig, p)


def test_toml_and_hash_stability(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('width = 128\n[text]\nlangs = ["zh"]\n')
    cfg = load(RenderConfig, p)
    assert cfg.width == 128 and cfg.text.langs == ("zh",)
    assert config_hash(cfg) == config_hash(load(RenderConfig, p))
    assert config_hash(cfg) != config_hash(RenderConfig())
