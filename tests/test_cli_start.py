"""Fast start: `import ferkit`, `ferkit --help` and `ferkit --version` load neither torch nor
timm (benchmarks/README_startup.md has the times); the public names still work."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

HEAVY = ("torch", "timm", "torchvision", "numpy", "cv2", "onnxruntime", "lightning")


def _modules_after(code: str) -> tuple[set[str], str]:
    """Heavy modules imported by ``code`` in a fresh interpreter, and what it printed."""
    probe = (f"{code}\nimport sys\n"
             f"print('LOADED', *[m for m in {HEAVY!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO / "src")})
    assert done.returncode == 0, done.stderr[-2000:]
    out, _, loaded = done.stdout.rpartition("LOADED")
    return set(loaded.split()), out


def test_import_ferkit_loads_no_heavy_library():
    loaded, _ = _modules_after("import ferkit")
    assert loaded == set()


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["predict", "--help"],
                                  ["data", "check", "--help"]])
def test_cli_help_and_version_load_no_heavy_library(argv):
    loaded, out = _modules_after(
        "from ferkit.cli import main\n"
        f"assert main({argv!r}) == 0")
    assert loaded == set()
    assert out.strip()


def test_version_option(capsys):
    import ferkit
    from ferkit.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"ferkit {ferkit.__version__}\n"
    assert main(["-V"]) == 0
    assert capsys.readouterr().out == f"ferkit {ferkit.__version__}\n"


def test_public_names_load_on_first_use():
    import ferkit
    from ferkit import FerkitError, Recognizer, create_model, load_checkpoint

    assert ferkit.Recognizer is Recognizer and callable(create_model)
    assert callable(load_checkpoint) and issubclass(FerkitError, Exception)
    assert set(ferkit.__all__) <= set(dir(ferkit))
    assert "baseline" in ferkit.list_models()
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        ferkit.nonexistent  # noqa: B018
