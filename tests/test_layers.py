"""The project's layers (written down in evaluation/__init__.py), checked from the source: every import of
every module of each package, function-level imports included, against the allowed graph; all argparse in
textinfuse/cli.py; and building the CLI's parser imports none of the heavy packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("render_engine", "textinfuse", "pipelines", "evaluation", "training", "ablation")
TEXTINFUSE_TOP = "textinfuse.cli"  # the top: it may import anything (lazily)
ANY = {"*"}
# source package -> project modules it may import (a package name allows all of its modules); `textinfuse`
# means its base modules, never `textinfuse.cli`. The renderer is a leaf but for the two input readers
# every layer shares (files from elsewhere, images), which themselves import nothing of ours.
ALLOWED = {
    "render_engine": {"render_engine", "textinfuse.files", "textinfuse.images"},
    "textinfuse": {"textinfuse"},
    "evaluation": {"evaluation", "textinfuse", "render_engine"},
    "pipelines": {"pipelines", "render_engine", "textinfuse"},
    "training": {"training", "textinfuse"},
    "ablation": ANY,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, at any depth; relative imports resolved,
    and `from pkg import mod` read as `pkg.mod`."""
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out += [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return out


def _allowed(source: str, target: str) -> bool:
    top = target.split(".")[0]
    if top not in PACKAGES:
        return True  # the standard library and third-party packages
    src_top = source.split(".")[0]
    if source == TEXTINFUSE_TOP or ALLOWED[src_top] is ANY:
        return True
    if top == "textinfuse" and (target == TEXTINFUSE_TOP or target.startswith(TEXTINFUSE_TOP + ".")):
        return False  # nothing below the top imports the CLI
    return any(target == a or target.startswith(a + ".") for a in ALLOWED[src_top])


def _modules():
    for pkg in PACKAGES:
        yield from sorted((REPO / pkg).rglob("*.py"))


def test_every_package_imports_only_the_layers_below_it():
    bad = [f"{p.relative_to(REPO)}:{line} imports {target}"
           for p in _modules() for line, target in _imports(p) if not _allowed(_module_name(p), target)]
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    assert not _allowed("pipelines.evaluate", "training.inference.load_reconstructor")
    assert not _allowed("evaluation.evaluate", "training.losses.LPIPS")
    assert not _allowed("evaluation.bench_build", "pipelines.shards.write_json_atomic")
    assert not _allowed("evaluation.bench_build", "pipelines.progress.Progress")
    assert _allowed("evaluation.bench_build", "textinfuse.progress.Progress")
    assert not _allowed("textinfuse.ocr", "textinfuse.cli.main") and _allowed("textinfuse.cli", "training.loop.train")
    assert not _allowed("render_engine.engine", "textinfuse.configio.load")
    assert _allowed("render_engine.engine", "textinfuse.images.find_images")
    assert not _allowed("training.data", "render_engine.backgrounds.BackgroundSet")
    found = _imports(REPO / "evaluation" / "evaluate.py")
    assert any(t == "evaluation.fid.FidScorer" for _, t in found)  # `from .fid import FidScorer`, resolved
    assert any(t == "multiprocessing" for _, t in found)  # imported inside a function


def test_argparse_lives_in_the_cli_only():
    users = sorted(str(p.relative_to(REPO)) for p in _modules()
                   if any(t == "argparse" or t.startswith("argparse.") for _, t in _imports(p)))
    assert users == ["textinfuse/cli.py"]


def test_building_the_parser_imports_no_heavy_package():
    code = ("import sys; from textinfuse.cli import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'ray', 'evaluation', 'training', 'pipelines')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_the_clis_reference_choices_are_the_evaluations():
    from evaluation.references import REFERENCES
    from textinfuse import cli

    assert cli.REFERENCES == REFERENCES
