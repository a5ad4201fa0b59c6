"""`--device auto` everywhere, and one line (no torch traceback) for a device that isn't there."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ferkit.devices import resolve_device
from ferkit.errors import FerkitError

NO_GPU = not torch.cuda.is_available()


def test_auto_is_the_gpu_when_there_is_one_else_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_named_devices_are_checked_against_this_machine(monkeypatch):
    assert resolve_device(" CPU ") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(FerkitError, match=r"'cuda:7' does not exist: this machine has 2 CUDA "
                                          r"GPUs \(cuda:0, cuda:1\)"):
        resolve_device("cuda:7")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(FerkitError, match="'cuda' is not available: .* sees no CUDA GPU; use "
                                          "'cpu', or 'auto'"):
        resolve_device("cuda")


@pytest.mark.parametrize("name", ["banana", "cuda:x", "meta", "gpu", ""])
def test_unknown_devices_say_what_is_accepted(name):
    with pytest.raises(FerkitError, match=f"unknown device {name!r}: use auto, cpu, cuda, "
                                          "cuda:N or mps"):
        resolve_device(name)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "face.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(path)
    return path


@pytest.mark.skipif(not NO_GPU, reason="checks the error on a machine without a GPU")
@pytest.mark.parametrize(("device", "message"), [
    ("cuda", "error: device 'cuda' is not available: torch"),
    ("cuda:7", "error: device 'cuda:7' is not available: torch"),
    ("banana", "error: unknown device 'banana': use auto, cpu, cuda, cuda:N or mps"),
])
def test_cli_unavailable_device_is_one_line(capsys, photo, tiny_checkpoint, device, message):
    from ferkit.cli import main

    for argv in (["predict", str(photo), "--no-detect", "--model", str(tiny_checkpoint)],
                 ["evaluate", str(tiny_checkpoint), "--data", "fake"]):
        assert main([*argv, "--device", device]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, err


def test_cli_default_device_is_auto(capsys, photo, tiny_checkpoint):
    from ferkit.cli import main

    assert main(["predict", str(photo), "--no-detect", "--model", str(tiny_checkpoint),
                 "--format", "quiet"]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    assert main(["predict", "--help"]) == 0
    assert "[default: auto]" in " ".join(capsys.readouterr().out.split())


def test_recognizer_takes_auto(tiny_checkpoint):
    import ferkit

    rec = ferkit.Recognizer.from_pretrained(str(tiny_checkpoint))
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert rec.backend.device.type == expected
    with pytest.raises(FerkitError, match="unknown device 'banana'"):
        ferkit.Recognizer.from_pretrained(str(tiny_checkpoint), device="banana")
