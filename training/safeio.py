"""Reading files that come from elsewhere (run folders, weights): nothing in them executes, and every failure
is a `LoadError` (a ValueError) whose message is one line starting with the file's path.

safetensors and JSON are parsed, never unpickled. `.pth` weights go through `torch.load(weights_only=True)`,
torch's restricted unpickler (tensors and plain containers only); any failure there is reported, not raised
raw. Only regular files are opened, so a FIFO or device planted in place of a file cannot hang or flood us.
"""

from __future__ import annotations

import errno
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

MAX_JSON_BYTES = 16 << 20  # state.json holds loop state, RNG and config: kilobytes; refuse a flood


class LoadError(ValueError):
    """A file that exists but cannot be used; the message is one line starting with its path."""


def first_line(e: BaseException) -> str:
    """`Type: first line of the message`: library errors can span many lines (torch's run to ten)."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _unpickle_reason(e: BaseException) -> str:
    """The useful line of torch's weights-only refusal (its message runs to ten lines, with advice to load
    the file with code execution allowed, which is not for files from elsewhere)."""
    for line in str(e).splitlines():
        if "WeightsUnpickler error:" in line:
            detail = line.split("WeightsUnpickler error:", 1)[1].strip().split(". Please")[0]
            return f"{type(e).__name__}: {detail}; nothing in it was run"
    return first_line(e)


def regular_file(path: str | Path, what: str = "no such file") -> Path:
    """`path` if it is a regular file (links followed); FileNotFoundError or LoadError otherwise."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, what, str(p))
    if not p.is_file():
        raise LoadError(f"{p}: not a regular file")
    return p


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors on CPU, metadata) of a .safetensors file."""
    p = regular_file(path)
    try:
        with safe_open(str(p), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise LoadError(f"{p}: unreadable safetensors ({first_line(e)})") from None


def read_json(path: str | Path) -> Any:
    p = regular_file(path)
    if p.stat().st_size > MAX_JSON_BYTES:
        raise LoadError(f"{p}: {p.stat().st_size} bytes, more than a state file can need ({MAX_JSON_BYTES})")
    try:
        return json.loads(p.read_bytes())
    except (ValueError, OSError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise LoadError(f"{p}: not valid JSON ({first_line(e)})") from None


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from .pth/.pt/.bin via torch's restricted (weights-only) unpickler."""
    p = regular_file(path, "no such file (weights are local only; see README)")
    if p.suffix == ".safetensors":
        return read_safetensors(p)[0]
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile,
            AttributeError, ImportError, IndexError, KeyError, TypeError) as e:
        # the restricted unpickler refuses anything but tensors and containers; a torn or foreign file
        # surfaces as any of these, from pickle or from torch's zip reader
        raise LoadError(f"{p}: not a weights file ({_unpickle_reason(e)})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a common wrapper around the state dict
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise LoadError(f"{p}: holds a {type(state).__name__}, not a mapping of names to tensors")
    return state


def check_tensors(path: str | Path, got: dict[str, torch.Tensor], want: dict[str, torch.Tensor],
                  finite: bool = True, hint: str = "") -> None:
    """Refuse `got` unless it has exactly `want`'s names, shapes and dtypes (and finite values); `hint`
    follows a name or shape mismatch (e.g. which model the file says it holds)."""
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing:
        raise LoadError(f"{path}: missing {len(missing)} tensor(s), e.g. {missing[0]}{hint}")
    if extra:
        raise LoadError(f"{path}: unexpected {len(extra)} tensor(s), e.g. {extra[0]}{hint}")
    for k, w in want.items():
        g = got[k]
        if g.shape != w.shape:
            raise LoadError(f"{path}: tensor {k} has shape {list(g.shape)}, the model needs {list(w.shape)}{hint}")
        if g.dtype != w.dtype:
            raise LoadError(f"{path}: tensor {k} has dtype {g.dtype}, the model needs {w.dtype}")
        if finite and g.is_floating_point() and not bool(torch.isfinite(g).all()):
            raise LoadError(f"{path}: tensor {k} holds non-finite values (NaN or inf)")
