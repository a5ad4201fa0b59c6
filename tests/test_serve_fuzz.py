"""Schemathesis fuzzes every operation in /openapi.json: no input may cause a 5xx.

Slow (about a minute on 2 CPU cores): ``pytest -m slow tests/test_serve_fuzz.py``.  The
same run by hand is in docs/serving.md.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ferkit.serve import ServeSettings, create_app
from live_server import live_server


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(tiny_checkpoint, tmp_path):
    pytest.importorskip("schemathesis", reason="pip install schemathesis")
    from ferkit.inference.recognizer import Recognizer

    st = shutil.which("st") or str(Path(sys.executable).parent / "st")
    # Small limits so the fuzzer also reaches the 413 paths.
    settings = ServeSettings(max_upload_bytes=200_000, max_pixels=2_000_000)
    app = create_app(lambda: Recognizer.from_pretrained(str(tiny_checkpoint)),
                     settings=settings, model_name="tiny-random")
    # Without ferkit.explain, /v1/explain answers 501 by design: fuzz the rest only then.
    skip = [] if importlib.util.find_spec("ferkit.explain") else ["--exclude-path",
                                                                  "/v1/explain"]
    with live_server(app) as url:
        run = subprocess.run(
            [st, "run", url + "/openapi.json", "--checks", "not_a_server_error",
             "--max-examples", "25", "--workers", "1", "--seed", "7", "--no-color",
             "--generation-database", "none", "--request-timeout", "60",
             "--report-dir", str(tmp_path), *skip],
            capture_output=True, text=True, timeout=900, cwd=tmp_path)  # its cache goes there
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "Server error" not in run.stdout
