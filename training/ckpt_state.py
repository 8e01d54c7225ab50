"""Optimizer, RNG and loop state as tensors (safetensors) plus plain JSON, and their strict validation.

A checkpoint must never execute anything (torch.save's pickle can), so everything is split into tensors
(`state.{param}.{name}` moments, `rng.torch`, `rng.cuda.{i}`) and JSON (param groups, Python's and numpy's
RNG, loop counters). Loading checks every value against the live optimizer before anything is applied, so
a file that is refused leaves the model, optimizer and RNG as they were (the caller can try an older one).
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import torch

from .safeio import LoadError, first_line

LOOP_KEYS = {"step": int, "stage": int, "stage_batches": int, "mix": dict}
LOOP_OPTIONAL = {"skipped": int}


def optimizer_to_files(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in sd["state"].items():
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{idx}.{name}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{name}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def rng_to_files() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    version, internal, gauss = random.getstate()
    return tensors, {"python": [version, list(internal), gauss],
                     "numpy": {"kind": kind, "keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss),
                               "cached_gaussian": float(cached)}}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def check_loop_state(where: str, d: Any, step: int) -> dict[str, Any]:
    """The loop counters, refused unless well-typed and consistent with the folder's step (a huge
    `stage_batches` would make the data loader replay for ever)."""
    if not isinstance(d, dict) or not set(LOOP_KEYS) <= set(d) or set(d) - set(LOOP_KEYS) - set(LOOP_OPTIONAL):
        raise LoadError(f"{where}: state needs exactly the keys {sorted(LOOP_KEYS)} (got {sorted(d)[:8]})"
                        if isinstance(d, dict) else f"{where}: state is a {type(d).__name__}, not an object")
    for k, t in {**LOOP_KEYS, **LOOP_OPTIONAL}.items():
        v = d.get(k, 0)
        if (t is int and (not _is_int(v) or v < 0)) or (t is dict and not isinstance(v, dict)):
            raise LoadError(f"{where}: state.{k} = {str(v)[:40]!r} is not a {'count' if t is int else 'mapping'}")
    if d["step"] != step:
        raise LoadError(f"{where}: state.step is {d['step']}, but the folder is step {step}")
    if d["stage_batches"] > d["step"]:
        raise LoadError(f"{where}: state.stage_batches {d['stage_batches']} exceeds state.step {d['step']}")
    for stage, counts in d["mix"].items():
        if not isinstance(counts, dict) or not all(_is_int(n) and n >= 0 for n in counts.values()):
            raise LoadError(f"{where}: state.mix.{stage} is not a mapping of source names to counts")
    return d


def _check_group_value(where: str, key: str, got: Any, live: Any) -> Any:
    """A saved param-group value converted to the live one's type: numbers stay finite numbers, tuples
    (betas) keep their length, flags (bool/None: implementation choices, not training state) must match."""
    if isinstance(live, bool) or live is None:
        if got != live:
            raise LoadError(f"{where}: param_groups {key} is {got!r}, this trainer uses {live!r}")
        return got
    if isinstance(live, (int, float)) and _is_num(got):
        return got
    if isinstance(live, tuple) and isinstance(got, list) and len(got) == len(live) and all(map(_is_num, got)):
        return tuple(got)
    raise LoadError(f"{where}: param_groups {key} = {str(got)[:40]!r} is not like {live!r}")


def _expected_names(opt: torch.optim.Optimizer, group: dict) -> set[str] | None:
    if isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)):
        return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group.get("amsgrad") else set())
    return None  # another optimizer: its own load_state_dict is the only check


def optimizer_from_files(where_t: str, where_j: str, tensors: dict[str, torch.Tensor], js: Any,
                         opt: torch.optim.Optimizer) -> dict[str, Any]:
    """A state dict for `opt.load_state_dict`, built from the files and checked against `opt`."""
    if not isinstance(js, dict) or not isinstance(js.get("param_groups"), list) \
            or not isinstance(js.get("scalars", {}), dict):
        raise LoadError(f"{where_j}: optimizer needs param_groups (a list) and scalars (an object)")
    live = opt.state_dict()["param_groups"]
    if len(js["param_groups"]) != len(live):
        raise LoadError(f"{where_j}: {len(js['param_groups'])} param groups, the optimizer has {len(live)}")
    groups, params = [], {}
    for g, lg, pg in zip(js["param_groups"], live, opt.param_groups, strict=True):
        if not isinstance(g, dict) or set(g) != set(lg):
            raise LoadError(f"{where_j}: a param group's keys differ from the optimizer's ({sorted(lg)})")
        if g["params"] != lg["params"]:
            raise LoadError(f"{where_j}: param group params {str(g['params'])[:40]} differ from the optimizer's")
        groups.append({k: (v if k == "params" else _check_group_value(where_j, k, v, lg[k])) for k, v in g.items()})
        params.update({i: (p, groups[-1]) for i, p in zip(lg["params"], pg["params"], strict=True)})
    state: dict[int, dict[str, Any]] = {}
    for key, t in tensors.items():
        if not key.startswith("state."):
            continue
        _, idx, name = key.split(".", 2)
        if not idx.isdigit() or int(idx) not in params:
            raise LoadError(f"{where_t}: tensor {key} is for parameter {idx}, which the optimizer does not have")
        p = params[int(idx)][0]
        if t.dim() and (t.shape != p.shape or not t.is_floating_point()):
            raise LoadError(f"{where_t}: tensor {key} has shape {list(t.shape)} ({t.dtype}), "
                            f"the parameter {list(p.shape)}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise LoadError(f"{where_t}: tensor {key} holds non-finite values (NaN or inf)")
        state.setdefault(int(idx), {})[name] = t
    for key, v in js.get("scalars", {}).items():
        idx, _, name = key.partition(".")
        if not idx.isdigit() or int(idx) not in params or not _is_num(v):
            raise LoadError(f"{where_j}: optimizer scalar {key} = {str(v)[:40]!r} is not a number of a parameter")
        state.setdefault(int(idx), {})[name] = v
    for idx, st in state.items():
        want = _expected_names(opt, params[idx][1])
        if want is not None and set(st) != want:
            raise LoadError(f"{where_t}: parameter {idx} has optimizer state {sorted(st)}, expected {sorted(want)}")
    return {"state": state, "param_groups": groups}


def check_rng(where_t: str, where_j: str, tensors: dict[str, torch.Tensor], js: Any) -> dict[str, Any]:
    """The RNG states, each tried on a scratch generator first, so a bad one is refused before use."""
    if not isinstance(js, dict):
        raise LoadError(f"{where_j}: rng is not an object")
    t = tensors.get("rng.torch")
    ref = torch.get_rng_state()
    if t is None or t.dtype != ref.dtype or t.shape != ref.shape:
        raise LoadError(f"{where_t}: rng.torch missing or not a {list(ref.shape)} uint8 tensor")
    names = [f"rng.cuda.{i}" for i in range(sum(k.startswith("rng.cuda.") for k in tensors))]
    if not all(k in tensors and tensors[k].dtype == torch.uint8 and tensors[k].dim() == 1 for k in names):
        raise LoadError(f"{where_t}: rng.cuda.* are not numbered 0.. uint8 vectors")
    cuda = [tensors[k] for k in names]
    try:
        torch.Generator().set_state(t)  # checks the content too, not only the size
        version, internal, gauss = js["python"]
        if gauss is not None and not isinstance(gauss, float):
            raise ValueError(f"python gauss_next {str(gauss)[:20]!r} is not a float")
        py_state = (version, tuple(internal), gauss)
        random.Random().setstate(py_state)
        n = js["numpy"]
        np_state = (n["kind"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
        if np_state[1].shape != (624,):
            raise ValueError(f"numpy keys: {np_state[1].shape[0]} values, MT19937 has 624")
        np.random.RandomState().set_state(np_state)
    except RuntimeError as e:
        raise LoadError(f"{where_t}: rng.torch unusable ({first_line(e)})") from None
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise LoadError(f"{where_j}: rng state unusable ({type(e).__name__}: {str(e)[:80]})") from None
    return {"torch": t, "cuda": cuda, "python": py_state, "numpy": np_state}


def set_rng(rng: dict[str, Any]) -> None:
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if rng["cuda"] and torch.cuda.is_available() and len(rng["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng["cuda"])
