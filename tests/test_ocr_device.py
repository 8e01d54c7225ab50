"""--ocr-device: parsing, the refusal without onnxruntime's CUDA provider, what reaches the engine."""

from __future__ import annotations

import onnxruntime
import pytest

from evaluation.ocr_cache import ocr_version
from textinfuse import ocr
from textinfuse.cli import main

NO_CUDA = "CUDAExecutionProvider" not in onnxruntime.get_available_providers()


@pytest.fixture(autouse=True)
def _cpu_after(monkeypatch):
    monkeypatch.delenv(ocr.DEVICE_ENV, raising=False)  # set_device writes it; the fixture undoes that
    yield


@pytest.mark.parametrize("text,want", [("cpu", ("cpu", 0)), ("CUDA", ("cuda", 0)), ("cuda:3", ("cuda", 3)),
                                       (" cuda:0 ", ("cuda", 0))])
def test_devices_parse(text, want):
    assert ocr.parse_device(text) == want


@pytest.mark.parametrize("text", ["gpu", "cuda:x", "cpu:1", "", "cuda:-1"])
def test_unknown_devices_are_refused(text):
    with pytest.raises(ValueError, match="use cpu, cuda or cuda:N"):
        ocr.parse_device(text)


def test_the_device_reaches_later_processes_through_the_environment(monkeypatch):
    assert ocr.device() == "cpu"
    assert ocr.set_device("CPU") == "cpu"
    import os

    assert os.environ[ocr.DEVICE_ENV] == "cpu"
    monkeypatch.setenv(ocr.DEVICE_ENV, "cuda:2")  # as a worker started by a driver that chose cuda:2 sees it
    assert ocr.device() == "cuda:2"
    assert ocr_version().endswith("-cuda:2")  # the eval cache never mixes GPU texts with the CPU's
    monkeypatch.setenv(ocr.DEVICE_ENV, "cpu")
    assert ocr_version().startswith("rapidocr-") and "cuda" not in ocr_version()


def test_a_cuda_engine_asks_onnxruntime_for_the_cuda_provider_on_the_chosen_gpu():
    eng = ocr._engine_on(1 << 20, "max", "cuda:1")
    ort = eng.cfg.EngineConfig.onnxruntime
    assert ort.use_cuda is True and ort.cuda_ep_cfg.device_id == 1
    assert ocr._engine_on(1 << 20, "max", "cpu").cfg.EngineConfig.onnxruntime.use_cuda is False


@pytest.mark.skipif(not NO_CUDA, reason="this onnxruntime has the CUDA provider")
def test_cuda_without_the_provider_is_refused_not_run_on_the_cpu():
    with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
        ocr.set_device("cuda")
    assert ocr.device() == "cpu"


@pytest.mark.skipif(not NO_CUDA, reason="this onnxruntime has the CUDA provider")
@pytest.mark.parametrize("command", [["filter", "--input", "x"], ["eval", "--gt-dir", "x", "--reference", "identity"],
                                     ["bench-build", "--input", "x"]])
def test_the_cli_refuses_cuda_in_one_line_before_any_work(tmp_path, capsys, command):
    rc = main([*command, "--out", str(tmp_path / "out"), "--ocr-device", "cuda"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "no CUDA provider" in err
    assert not (tmp_path / "out").exists()


def test_the_cli_refuses_an_unknown_device(tmp_path, capsys):
    assert main(["filter", "--input", "x", "--out", str(tmp_path / "o"), "--ocr-device", "tpu"]) == 2
    assert "use cpu, cuda or cuda:N" in capsys.readouterr().err
