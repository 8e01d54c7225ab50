import numpy as np
import pytest

from render_engine.paths import bundled_corpora
from render_engine.text import TextSource


@pytest.fixture(scope="module")
def source():
    return TextSource(bundled_corpora(), bundled_corpora() / "charsets" / "gb2312_level1.txt")


def test_balanced_sampling_reaches_rare_and_missing_characters(source):
    charset = set(source.charset)
    assert len(charset) == 3755
    in_corpus = set("".join(source.zh)) & charset
    assert 0.7 < len(in_corpus) / len(charset) < 1.0  # the corpus alone leaves some out

    def hits(balanced: bool) -> set[str]:
        rng = np.random.default_rng(0)
        return set("".join(source.sample(rng, "zh", 30, page=False, balanced=balanced) for _ in range(400))) & charset

    natural, balanced = hits(False), hits(True)
    assert len(balanced) > 1.3 * len(natural)
    assert len(balanced - in_corpus) > 20  # characters no paragraph contains still appear


def test_english_has_structure_and_real_words(source):
    rng = np.random.default_rng(1)
    items = [source.sample(rng, "en", 80, page=False) for _ in range(200)]
    assert any("@" in t or "http" in t or "www." in t for t in items)
    assert any("$" in t for t in items) and any("\n" in t for t in items)
    words = " ".join(items).lower().split()
    assert sum(w in {"the", "and", "of", "to", "is"} for w in words) > 20  # English, not lorem ipsum
    page = source.sample(rng, "en", 500, page=True)
    assert len(page) >= 500 and "\n" in page


def test_mixed_text_keeps_chinese_and_adds_latin(source):
    rng = np.random.default_rng(2)
    for _ in range(20):
        t = source.sample(rng, "mixed", 60, page=False)
        assert any("\u4e00" <= c <= "\u9fff" for c in t) and any(c.isascii() and c.isalnum() for c in t)


def test_the_same_seed_gives_the_same_text_on_any_day(source, monkeypatch):
    """Faker draws dates up to "now" unless told otherwise: the text of a seed must not depend on the day
    it is rendered (found when an ablation's data, rendered again weeks later, differed in two dates)."""
    import datetime

    import faker.providers.date_time as fdt

    def texts():
        rng = np.random.default_rng(5)
        return [source.sample(rng, lang, 60, page=False) for lang in ("en", "zh") for _ in range(150)]

    today = texts()
    assert any("年" in t and "日" in t for t in today)  # Chinese dates were drawn
    later = datetime.datetime.now() + datetime.timedelta(days=4000)

    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return later

    monkeypatch.setattr(fdt, "datetime", Later)
    assert texts() == today
