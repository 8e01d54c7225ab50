"""Text metrics shared by the tests, the filters and the evaluation: edit distance and NED.

NED here follows OmniDoc-TokenBench: 1 - Levenshtein(a, b) / max(len(a), len(b)), so 1.0 is identical.
"""

from __future__ import annotations


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions all cost 1); O(len(a) * len(b))."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def ned_similarity(a: str, b: str) -> float:
    """1 - normalised edit distance, in [0, 1]; two empty strings score 1."""
    n = max(len(a), len(b))
    return 1.0 if n == 0 else 1.0 - levenshtein(a, b) / n
