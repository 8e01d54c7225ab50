"""Text to render: corpus prose plus faker-made structured text, in English, Chinese or mixed.

All randomness comes from the caller's numpy Generator (faker instances are re-seeded from it per call),
so a sample's text is a pure function of its seed.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections import defaultdict
from functools import cached_property
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_SENT_END = re.compile(r"(?<=[。！？；.!?;])\s*")
EN_LOCALES = ("en_US", "en_GB", "en_AU", "en_CA", "en_IN", "en_NZ")
EN_KINDS = {  # snippet kind -> weight (scene text); page text is mostly prose with some structure
    "prose": 0.34, "heading": 0.12, "list": 0.08, "table": 0.08, "date": 0.05, "price": 0.06,
    "address": 0.07, "url": 0.06, "code": 0.06, "numbers": 0.08,
}
ZH_KINDS = {"prose": 0.6, "name": 0.06, "address": 0.08, "company": 0.08, "date": 0.06, "price": 0.06, "phone": 0.06}
# dates are drawn from 1970 up to this day, not up to today (Faker's default): otherwise the same seed
# and config give other text, and other pixels, on another day
DATE_END = datetime.datetime(2026, 1, 1)


def read_paragraphs(folder: Path) -> list[str]:
    """All lines of all *.txt files under `folder`, stripped, empty ones dropped (sorted by file name)."""
    out: list[str] = []
    for f in sorted(folder.glob("*.txt")):
        try:
            out.extend(s for s in (ln.strip() for ln in f.read_text(encoding="utf-8").splitlines()) if s)
        except (OSError, UnicodeDecodeError) as e:
            log.warning("%s: corpus file skipped (%s)", f, e)
    return out


class TextSource:
    """Samples English, Chinese and mixed text. `charset` enables balanced (rare-character) sampling."""

    def __init__(self, corpora: Path, charset: Path | None = None):
        self.en = read_paragraphs(corpora / "en")
        self.zh = read_paragraphs(corpora / "zh")
        if not self.en or not self.zh:
            raise ValueError(f"{corpora}: needs non-empty en/*.txt and zh/*.txt")
        self.charset_path = charset

    def preload(self) -> None:
        """Segment the Chinese corpus now (cached on disk across processes), not sample by sample."""
        import tempfile

        from .layout import preload

        preload(self.zh, Path(tempfile.gettempdir()) / "textinfuse-cache")

    # -- faker ------------------------------------------------------------------------------------
    @cached_property
    def _fakers(self) -> dict:
        from faker import Faker

        return {loc: Faker(loc) for loc in (*EN_LOCALES, "zh_CN")}

    def _faker(self, rng: np.random.Generator, locale: str | None = None):
        loc = locale or EN_LOCALES[int(rng.integers(len(EN_LOCALES)))]
        fk = self._fakers[loc]
        fk.seed_instance(int(rng.integers(2**31)))
        return fk

    # -- charset balance --------------------------------------------------------------------------
    @cached_property
    def charset(self) -> list[str]:
        if not self.charset_path:
            return []
        text = Path(self.charset_path).read_text(encoding="utf-8")
        return [c for c in text if not c.isspace()]

    @cached_property
    def _char_index(self) -> dict[str, list[int]]:
        idx: dict[str, list[int]] = defaultdict(list)
        wanted = set(self.charset)
        for i, p in enumerate(self.zh):
            for c in set(p) & wanted:
                idx[c].append(i)
        return idx

    # -- public -----------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator, lang: str, n_chars: int, page: bool, balanced: bool = False) -> str:
        """About `n_chars` characters (more rather than fewer) of `lang` in {'en', 'zh', 'mixed'}.

        Page text is paragraphs separated by newlines; scene text is a short snippet or structured item.
        """
        if lang == "en":
            return self._en_page(rng, n_chars) if page else self._en_snippet(rng, n_chars)
        text = self._zh_page(rng, n_chars, balanced) if page else self._zh_snippet(rng, n_chars, balanced)
        return self._mix(rng, text) if lang == "mixed" else text

    def _window(self, paras: list[str], rng: np.random.Generator, n_chars: int, start: int | None = None) -> str:
        i = int(rng.integers(len(paras))) if start is None else start
        out, total = [], 0
        while total < n_chars:
            out.append(paras[i % len(paras)])
            total += len(out[-1])
            i += 1
        return "\n".join(out)

    def _snip(self, para: str, rng: np.random.Generator, n_chars: int) -> str:
        sents = [s for s in _SENT_END.split(para) if s]
        j = int(rng.integers(len(sents)))
        out = sents[j]
        while len(out) < n_chars and j + 1 < len(sents):
            j += 1
            out += (" " if sents[j][0].isascii() else "") + sents[j]
        return out

    def _en_page(self, rng: np.random.Generator, n_chars: int) -> str:
        parts, total = [], 0
        while total < n_chars:
            r = rng.random()
            if r < 0.12:
                s = self._en_item(rng, "heading")
            elif r < 0.2:
                s = self._en_item(rng, ("list", "table", "numbers")[int(rng.integers(3))])
            else:
                s = self._window(self.en, rng, min(n_chars - total, 400))
            parts.append(s)
            total += len(s)
        return "\n".join(parts)

    def _en_snippet(self, rng: np.random.Generator, n_chars: int) -> str:
        kinds = list(EN_KINDS)
        kind = kinds[int(rng.choice(len(kinds), p=np.array(list(EN_KINDS.values())) / sum(EN_KINDS.values())))]
        if kind == "prose":
            return self._snip(self.en[int(rng.integers(len(self.en)))], rng, n_chars)
        return self._en_item(rng, kind)

    def _en_words(self, rng: np.random.Generator, n: int) -> str:
        """`n` consecutive real words from the English corpus (faker's own words are Latin lorem ipsum)."""
        words = self.en[int(rng.integers(len(self.en)))].split()
        k = int(rng.integers(max(1, len(words) - n + 1)))
        return " ".join(w.strip(".,;:()[]\"'") for w in words[k : k + n]).strip() or "Note"

    def _en_item(self, rng: np.random.Generator, kind: str) -> str:
        fk = self._faker(rng)
        if kind == "heading":
            s = self._en_words(rng, int(rng.integers(2, 7)))
            return s.upper() if rng.random() < 0.3 else s.title() if rng.random() < 0.6 else s[:1].upper() + s[1:]
        if kind == "list":
            bullet = ("•", "-", "*", "1.")[int(rng.integers(4))]
            items = [self._en_words(rng, int(rng.integers(2, 8))) for _ in range(int(rng.integers(2, 6)))]
            return "\n".join(f"{str(k + 1) + '.' if bullet == '1.' else bullet} {it}" for k, it in enumerate(items))
        if kind == "table":
            rows = []
            for _ in range(int(rng.integers(2, 6))):
                cells = [self._en_words(rng, 1).capitalize(), f"{fk.pyfloat(left_digits=4, right_digits=2, positive=True):,.2f}",
                         f"{rng.normal(0, 8):+.1f}%", str(fk.random_int(1, 999))]
                rows.append("  ".join(cells))
            return "\n".join(rows)
        if kind == "date":
            return ("Date: " if rng.random() < 0.3 else "") + fk.date(pattern=("%Y-%m-%d", "%d %B %Y", "%b %d, %Y", "%m/%d/%y")[int(rng.integers(4))],
                                                                     end_datetime=DATE_END)
        if kind == "price":
            return f"{self._en_words(rng, int(rng.integers(1, 3))).capitalize()} {fk.pricetag()}" if rng.random() < 0.6 else f"Total: ${fk.pyfloat(left_digits=3, right_digits=2, positive=True):,.2f}"
        if kind == "address":
            return fk.address().replace("\n", ", " if rng.random() < 0.5 else "\n")
        if kind == "url":
            return (fk.url(), fk.email(), fk.uri(), fk.domain_name())[int(rng.integers(4))]
        if kind == "code":
            a, b = (self._en_words(rng, 1).lower() or "x" for _ in range(2))
            return (f"{a}_{b} = {fk.random_int(0, 4096)}", f"/usr/{a}/{fk.file_name()}",
                    f"0x{fk.random_int(0, 2**32):08X}", f"{a}({b}, {fk.random_int(0, 99)})",
                    fk.sha1()[: int(rng.integers(8, 20))], fk.isbn13())[int(rng.integers(6))]
        # numbers
        return "  ".join(str(fk.random_int(0, 10 ** int(rng.integers(1, 7)))) for _ in range(int(rng.integers(3, 8))))

    def _zh_pick(self, rng: np.random.Generator, balanced: bool) -> tuple[int, str | None]:
        """A paragraph index; in balanced mode one that contains a uniformly drawn charset character."""
        if balanced and self.charset:
            c = self.charset[int(rng.integers(len(self.charset)))]
            hits = self._char_index.get(c)
            if hits:
                return hits[int(rng.integers(len(hits)))], None
            return int(rng.integers(len(self.zh))), c
        return int(rng.integers(len(self.zh))), None

    def _drill(self, rng: np.random.Generator, missing: str) -> str:
        """A short line of charset characters (like a character list) for characters no paragraph has."""
        cs = self.charset
        extra = [cs[int(rng.integers(len(cs)))] for _ in range(int(rng.integers(3, 9)))]
        pos = int(rng.integers(len(extra) + 1))
        return "".join(extra[:pos] + [missing] + extra[pos:])

    def _zh_page(self, rng: np.random.Generator, n_chars: int, balanced: bool) -> str:
        start, missing = self._zh_pick(rng, balanced)
        text = self._window(self.zh, rng, n_chars, start)
        return f"{self._drill(rng, missing)}\n{text}" if missing else text

    def _zh_snippet(self, rng: np.random.Generator, n_chars: int, balanced: bool) -> str:
        kinds = list(ZH_KINDS)
        kind = kinds[int(rng.choice(len(kinds), p=np.array(list(ZH_KINDS.values())) / sum(ZH_KINDS.values())))]
        if kind == "prose" or balanced:
            i, missing = self._zh_pick(rng, balanced)
            return self._drill(rng, missing) if missing else self._snip(self.zh[i], rng, n_chars)
        fk = self._faker(rng, "zh_CN")
        if kind == "name":
            return f"{('姓名', '联系人', '负责人')[int(rng.integers(3))]}：{fk.name()}"
        if kind == "address":
            return fk.address()
        if kind == "company":
            return fk.company()
        if kind == "date":
            d = fk.date_object(end_datetime=DATE_END)
            return f"{d.year}年{d.month}月{d.day}日"
        if kind == "price":
            return f"{fk.word()} ¥{fk.pyfloat(left_digits=4, right_digits=2, positive=True):,.2f}"
        return f"电话：{fk.phone_number()}"

    def _mix(self, rng: np.random.Generator, text: str) -> str:
        """Embed Latin words, model numbers and figures between Chinese words, as real documents do."""
        from .layout import tokenize

        fk = self._faker(rng, "en_US")
        out = []
        for para in text.split("\n"):
            toks = list(tokenize(para))
            for _ in range(max(1, len(toks) // 12)):
                r = rng.random()
                ins = self._en_words(rng, 1) if r < 0.4 else (f"{fk.random_int(1, 2030)}" if r < 0.7 else
                                                   f"{fk.lexify('???').upper()}-{fk.random_int(10, 999)}")
                toks.insert(int(rng.integers(len(toks) + 1)), f" {ins} " if rng.random() < 0.5 else ins)
            out.append("".join(toks))
        return "\n".join(out)
