import pytest

from render_engine.layout import CLOSING, OPENING, fill, tokenize, wrap


def w1(s: str) -> float:  # every character one unit wide
    return float(len(s))


ZH = "我们在“北京大学”学习，研究《红楼梦》的版本问题（包括脂评本）。然后，他说：“好的！”我们就出发了。"


@pytest.mark.parametrize("width", [4, 5, 6, 7, 9, 12])
def test_kinsoku_rules_hold_at_every_width(width):
    lines = wrap(ZH, w1, width)
    assert "".join(lines) == ZH
    for ln in lines[1:]:
        assert ln[0] not in CLOSING, (width, lines)
    for ln in lines[:-1]:
        assert ln[-1] not in OPENING, (width, lines)


def test_chinese_breaks_between_words():
    toks = tokenize("自然语言处理是人工智能的一个分支")
    assert "".join(toks) == "自然语言处理是人工智能的一个分支"
    assert len(toks) < 14  # words, not characters
    lines = wrap("自然语言处理是人工智能的一个分支", w1, 8)
    bounds = {sum(len(t) for t in toks[:i]) for i in range(len(toks) + 1)}
    pos = 0
    for ln in lines[:-1]:
        pos += len(ln)
        assert pos in bounds


def test_english_breaks_at_spaces_and_drops_them():
    text = "The quick brown fox jumps over the lazy dog again and again"
    lines = wrap(text, w1, 15)
    assert " ".join(lines) == text
    assert all(len(ln) <= 15 and ln == ln.strip() for ln in lines)


def test_long_token_is_split_but_never_overflows():
    lines = wrap("see https://example.org/a/very/long/path/name.html now", w1, 10)
    assert all(len(ln) <= 10 for ln in lines)
    assert "".join(lines).replace(" ", "") == "seehttps://example.org/a/very/long/path/name.htmlnow"


def test_fill_respects_capacity_and_marks_paragraphs():
    out = fill("aa bb cc dd\nee ff", w1, capacity=3, col_w=5, indent=0.0, px=1)
    assert out == [("aa bb", True), ("cc dd", False), ("ee ff", True)]
    assert len(fill("aa bb cc dd ee ff gg", w1, capacity=2, col_w=5, indent=0.0, px=1)) == 2


def test_indent_shortens_only_the_first_line_and_keeps_the_segmentation():
    out = fill("aa bb cc dd", w1, capacity=5, col_w=5, indent=2.0, px=1)
    assert out == [("aa", True), ("bb cc", False), ("dd", False)]
    toks = tokenize(ZH)
    bounds = {sum(len(t) for t in toks[:i]) for i in range(len(toks) + 1)}
    lines = wrap(ZH, w1, 9, first_w=6)
    assert len(lines[0]) <= 6 and all(len(ln) <= 9 for ln in lines[1:]) and "".join(lines) == ZH
    pos = 0
    for ln in lines[:-1]:  # every break, the first included, is between the whole paragraph's words
        pos += len(ln)
        assert pos in bounds
