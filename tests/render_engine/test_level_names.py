"""`--level` takes numbers and names, single, ranges and lists."""

from __future__ import annotations

import pytest

from render_engine.levels import LEVELS, parse_levels
from textinfuse.cli import build_parser, render_overrides


@pytest.mark.parametrize("text,want", [("3", [3]), ("2-4", [2, 3, 4]), ("easy", [1]), ("Hard", [5]),
                                       ("easy-medium", [1, 2, 3]), ("moderate-4", [2, 3, 4]),
                                       ("1,5", [1, 5]), ("easy,hard,easy", [1, 5]), ("challenging", [4])])
def test_levels_by_number_or_name(text, want):
    assert parse_levels(text) == want


def test_every_level_name_is_accepted():
    assert [parse_levels(lv.name) for lv in LEVELS.values()] == [[n] for n in LEVELS]


@pytest.mark.parametrize("text,msg", [("6", "use 1-5 or a name"), ("extreme", "easy, moderate"),
                                      ("hard-easy", "easier to harder"), ("", "use 1-5")])
def test_unknown_levels_are_named(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_levels(text)


def test_the_render_flag_reaches_the_config():
    a = build_parser().parse_args(["render", "--out", "x", "--level", "moderate-medium"])
    assert "render.levels=[2, 3]" in render_overrides(a)
