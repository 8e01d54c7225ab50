"""Typed config loading: YAML/TOML/dict -> nested frozen dataclasses, strict.

Unknown keys and wrong types are rejected with a message naming the dotted key and the file.
`--set a.b=v` overrides are applied to the raw mapping before conversion (values parsed as YAML).
This module imports nothing heavy, so every job's config goes through it at the CLI edge.

Config files are trusted not to run code, not to be small: YAML aliases are refused (an alias bomb of a
few hundred bytes expands to gigabytes when the mapping is copied), as are duplicate keys (YAML would
keep the last silently), files over `MAX_CONFIG_BYTES`, FIFOs and devices, and values that are not
plain JSON-like data (dates, binary, sets), so every config can be copied, hashed and written back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the `tomli` package
    import tomli as tomllib  # type: ignore[no-redef]

T = TypeVar("T")
MAX_CONFIG_BYTES = 1 << 20  # a hand-written config is a few kB; anything near this is a mistake or hostile


class ConfigError(ValueError):
    """A bad config value; the message is one line naming the key (and file when known)."""


class _Refused(yaml.MarkedYAMLError):
    """Well-formed YAML that a config file may not use (an alias, a duplicate key)."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and duplicate keys, at the line where they occur."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            ev = self.peek_event()
            raise _Refused(problem=f"alias *{ev.anchor}: YAML aliases are not allowed in config files",
                           problem_mark=ev.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable: SafeConstructor refuses it with its own message
                    continue
                if first is not None:
                    raise _Refused(problem=f"duplicate key {key!r} (first at line {first})",
                                   problem_mark=key_node.start_mark)
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _yaml_error(e: yaml.YAMLError, where: str) -> ConfigError:
    """One line naming `where`, the line and the problem."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    at = f" at line {mark.line + 1}" if mark is not None else ""
    what = getattr(e, "problem", None) or (str(e).splitlines() or [type(e).__name__])[0]
    if isinstance(e, _Refused):
        return ConfigError(f"{where}:{at.replace(' at ', ' ')}: {what}")
    return ConfigError(f"{where}: not valid YAML{at} ({what})")


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.reader.ReaderError as e:  # a control character: it has a position, not a mark
        raise ConfigError(f"{where}: not valid YAML at line {text.count(chr(10), 0, e.position) + 1} "
                          f"(character #x{e.character:04x}: {e.reason})") from None
    except yaml.YAMLError as e:
        raise _yaml_error(e, where) from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None


def _parse_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        m = re.search(r"\(at line (\d+), column \d+\)$", first)
        if not m:
            raise ConfigError(f"{where}: not valid TOML ({first})") from None
        n = int(m.group(1))  # tomllib names the line, not the key: quote the line so the key is seen
        src = text.splitlines()[n - 1].strip() if 0 < n <= len(text.splitlines()) else ""
        raise ConfigError(f"{where}: not valid TOML at line {n} ({first[: m.start()].strip()}): "
                          f"{src[:80]!r}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None


_PLAIN = (str, int, float, bool, type(None))


def _check_plain(value: Any, key: str, where: str) -> None:
    """Refuse what JSON cannot hold (dates, binary, sets, non-string keys): configs are copied and hashed
    as JSON, and a YAML 1.1 key such as `off:` that became False is a typo better caught here."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{where}: key {k!r}{f' in {key}' if key else ''} is not a string (quote it)")
            _check_plain(v, f"{key}.{k}" if key else k, where)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_plain(v, f"{key}[{i}]", where)
    elif not isinstance(value, _PLAIN):
        raise ConfigError(f"{where}: {key or 'value'}: a {type(value).__name__} is not a config value "
                          "(quote it to make it a string)")


def _read_text(p: Path) -> str:
    """The file as text, refusing non-regular files (a FIFO would block forever), big files and non-UTF-8."""
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat below refuses it anyway
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ConfigError(f"{p}: {'a folder' if stat.S_ISDIR(mode) else 'not a regular file'}, not a config file")
        data = os.read(fd, MAX_CONFIG_BYTES + 1)
        while len(data) <= MAX_CONFIG_BYTES and (more := os.read(fd, MAX_CONFIG_BYTES + 1 - len(data))):
            data += more  # os.read may return less than asked
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config ({e.strerror or e})") from None
    finally:
        os.close(fd)
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{p}: config file larger than {MAX_CONFIG_BYTES // 2**20} MiB")
    try:
        return data.decode("utf-8-sig")  # -sig: a BOM (Windows editors) is not part of the config
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start})") from None


def read_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file into a plain dict (strictly, see the module doc)."""
    p = Path(path)
    text = _read_text(p)
    data = _parse_toml(text, str(p)) if p.suffix == ".toml" else _parse_yaml(text, str(p))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping, got {type(data).__name__}")
    _check_plain(data, "", str(p))
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `a.b=v` strings to a nested dict (a copy); v is parsed as YAML (so 3, true, [1, 2] work)."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        where = f"--set {item[:60]!r}" + ("..." if len(item) > 60 else "")  # one short line, whatever was typed
        if "=" not in item:
            raise ConfigError(f"{where}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"{where}: empty key part")
        try:
            value = yaml.load(raw, Loader=_StrictLoader) if raw.strip() else ""  # noqa: S506 (safe subclass)
        except _Refused as e:  # an alias bomb on the command line is as bad as one in a file
            raise _yaml_error(e, where) from None
        except yaml.YAMLError:
            value = raw  # not YAML (e.g. `a: b: c`): taken as the string it is
        except RecursionError:
            raise ConfigError(f"{where}: nested too deeply") from None
        _check_plain(value, key.strip(), where)
        node = out
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"{where}: {p} is not a section")
            node = nxt
        node[parts[-1]] = value
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Convert `value` to type `tp` or raise ConfigError naming `key`."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a section (mapping), got {type(value).__name__}")
        return from_dict(tp, value, prefix=key)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
        inner = args[0] if args else Any
        items = [_convert(inner, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is not list else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        kt, vt = args if args else (Any, Any)
        return {_convert(kt, k, f"{key}.{k}"): _convert(vt, v, f"{key}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {type(value).__name__} {value!r}")
        return value
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{key}: cannot use {value!r} as {_type_name(tp)}")


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build dataclass `cls` from a mapping, strictly (unknown keys and wrong types raise ConfigError)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown key {where}{unknown[0]} (known: {', '.join(sorted(fields))})"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{prefix}.{name}" if prefix else name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        where = f"{prefix}: " if prefix else ""
        raise ConfigError(f"{where}{e}") from None


def load(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = (),
         base: Mapping[str, Any] | None = None) -> T:
    """Load `cls` from an optional file, with `base` mapping under it and `--set` overrides on top."""
    data: dict[str, Any] = json.loads(json.dumps(dict(base or {})))
    if path is not None:
        data = deep_merge(data, read_mapping(path))
    data = apply_overrides(data, overrides)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from None


def deep_merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge of b over a (b wins); neither input is modified."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def to_dict(obj: Any) -> Any:
    """Dataclass -> plain JSON-able structure (tuples become lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def config_hash(obj: Any) -> str:
    """sha256 (hex, first 16) of the canonical JSON of a config."""
    blob = json.dumps(to_dict(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", "surrogateescape")).hexdigest()[:16]  # any file name hashes
