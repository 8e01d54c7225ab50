"""Where the bundled data lives (fonts/, corpora/, backgrounds/ at the repository root).

Set TEXTINFUSE_DATA to a folder holding those three to use another copy (e.g. a non-editable install).
"""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    env = os.environ.get("TEXTINFUSE_DATA")
    return Path(env) if env else Path(__file__).resolve().parent.parent


def bundled_fonts() -> Path:
    return data_root() / "fonts"


def bundled_corpora() -> Path:
    return data_root() / "corpora"


def bundled_backgrounds() -> Path:
    return data_root() / "backgrounds"
