"""``ferkit ui``: the Streamlit app starts (headless, loopback, offline) and answers health."""

from __future__ import annotations

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
