"""The Recognizer on a random-weight tiny checkpoint: real files, real photos, real numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ferkit
from conftest import shared_path
from ferkit.errors import CheckpointError, FerkitError, InputError
from ferkit.faces.align import box_matrix
from ferkit.inference.results import FaceResult, ImageResult

DLIB = ("face_photos", "dlib", "examples", "faces")


@pytest.fixture(scope="module")
def recognizer(tiny_checkpoint):
    return ferkit.Recognizer.from_pretrained(tiny_checkpoint, batch_size=4)


def _patterned(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _check_probs(face: FaceResult, names: tuple[str, ...]) -> None:
    probs = np.array([face.probs[n] for n in names])
    assert abs(probs.sum() - 1.0) < 1e-5 and (probs > 0).all()
    assert face.label == names[int(np.argmax(probs))]
    assert face.score == pytest.approx(probs.max())


def test_photo_gives_every_face_with_probabilities(recognizer):
    path = shared_path(*DLIB, "2008_002506.jpg")
    result = recognizer(str(path))
    assert isinstance(result, ImageResult)
    assert (result.source, result.width, result.height, result.error) == (str(path), 500, 375,
                                                                         None)
    assert len(result.faces) == 3
    for face in result.faces:
        _check_probs(face, recognizer.label_names)
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= 500 and 0 <= y1 < y2 <= 375
        assert 0.9 < face.detector_score <= 1.0 and len(face.landmarks) == 5
        # The crop matrix sends the landmarks to the 5-point template of the 64x64 crop.
        m = np.array(face.crop_matrix)
        mapped = np.array(face.landmarks) @ m[:, :2].T + m[:, 2]
        from ferkit.faces import template_points
        assert np.abs(mapped - template_points((64, 64), 0.2)).max() < 3.0


def test_no_face_gives_an_empty_result(recognizer):
    result = recognizer(shared_path(*DLIB, "dogs.jpg"))
    assert result.faces == () and result.error is None and result.width == 900


def test_batched_equals_one_by_one(recognizer):
    images = [_patterned(50, 70, s) for s in range(5)]
    # Faces from several images share model batches of 4 (batch_size=4 across 5 crops).
    together = recognizer(images, detect=False)
    alone = [recognizer(img, detect=False) for img in images]
    assert len(together) == 5
    for a, b in zip(together, alone, strict=True):
        pa = np.array(list(a.faces[0].probs.values()))
        pb = np.array(list(b.faces[0].probs.values()))
        assert np.abs(pa - pb).max() < 1e-5
    # Different images do get different outputs (the batch is not one repeated row).
    first = [f.faces[0].probs["happy"] for f in together]
    assert len({round(p, 6) for p in first}) == 5


def test_generators_are_consumed_in_chunks(recognizer):
    images = [_patterned(30, 30, s) for s in range(6)]
    pulled = []

    def frames():
        for i, img in enumerate(images):
            pulled.append(i)
            yield img

    stream = recognizer.iter_results(frames(), detect=False, batch_size=4)
    first = next(stream)
    assert pulled == [0, 1, 2, 3]  # one chunk read, not the whole stream
    rest = list(stream)
    as_list = recognizer(images, detect=False)
    assert len(rest) == 5 and pulled == list(range(6))
    assert [r.faces[0].probs for r in [first, *rest]] == [r.faces[0].probs for r in as_list]
    assert len(recognizer(img for img in images[:2])) == 2  # __call__ takes generators too


def test_batched_detection_across_photos_matches_single_calls(recognizer):
    paths = [shared_path(*DLIB, n) for n in ("2009_004587.jpg", "2008_001322.jpg",
                                              "2008_002506.jpg")]
    together = recognizer(paths)  # 8 faces in batches of 4 across image borders
    for res, path in zip(together, paths, strict=True):
        single = recognizer(path)
        assert [f.box for f in res.faces] == [f.box for f in single.faces]
        for fa, fb in zip(res.faces, single.faces, strict=True):
            assert max(abs(fa.probs[k] - fb.probs[k]) for k in fa.probs) < 1e-5


def test_probabilities_match_a_direct_model_call(recognizer):
    """The Recognizer's numbers are the model's softmax on eval_transform(crop)."""
    from ferkit.data.transforms import eval_transform

    image = _patterned(64, 64, 7)
    face = recognizer(image, detect=False).faces[0]
    x = eval_transform(recognizer.config.data)(torch.from_numpy(image).permute(2, 0, 1))
    with torch.no_grad():
        expected = torch.softmax(recognizer.model(x[None]).logits, 1)[0].numpy()
    got = np.array([face.probs[n] for n in recognizer.label_names])
    assert np.abs(got - expected).max() < 1e-5


def test_known_boxes_skip_the_detector(recognizer):
    image = _patterned(120, 160, 1)
    boxes = [(10, 20, 60, 80), (90.5, 10, 150, 70)]
    result = recognizer(image, boxes=boxes)
    assert [f.box for f in result.faces] == [tuple(map(float, b)) for b in boxes]
    assert all(f.detector_score is None and f.landmarks is None for f in result.faces)
    assert np.allclose(result.faces[0].crop_matrix, box_matrix(boxes[0], (64, 64), 0.2))
    # Per-image boxes for a list; None means "detect".
    results = recognizer([image, image], boxes=[boxes[:1], []])
    assert [len(r.faces) for r in results] == [1, 0]


def test_bad_boxes_are_explained(recognizer):
    image = _patterned(50, 50, 2)
    with pytest.raises(InputError, match="empty"):
        recognizer(image, boxes=[(10, 10, 5, 20)])
    with pytest.raises(InputError, match="outside the 50x50 image"):
        recognizer(image, boxes=[(60, 60, 90, 90)])
    with pytest.raises(FerkitError, match="one list of boxes"):
        recognizer([image, image], boxes=[[(1, 1, 9, 9)]])


def test_no_detect_treats_the_image_as_one_face(recognizer):
    result = recognizer(_patterned(30, 40, 3), detect=False)
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.box == (0.0, 0.0, 40.0, 30.0) and face.detector_score is None
    assert np.allclose(face.crop_matrix, [[1.6, 0, 0], [0, 64 / 30, 0]])


def test_top_k_keeps_the_best_classes_in_order(recognizer):
    image = _patterned(64, 64, 4)
    full = recognizer(image, detect=False).faces[0]
    top = recognizer(image, detect=False, top_k=3).faces[0]
    assert len(top.probs) == 3
    assert list(top.probs) == sorted(full.probs, key=full.probs.get, reverse=True)[:3]
    assert next(iter(top.probs)) == top.label == full.label
    with pytest.raises(FerkitError, match="top_k"):
        recognizer(image, detect=False, top_k=0)


def test_ranking_is_by_probability_with_ties_in_class_order():
    from ferkit.inference.results import ranked

    probs = {"neutral": 0.3, "happy": 0.3, "sad": 0.4}
    assert ranked(probs) == [("sad", 0.4), ("neutral", 0.3), ("happy", 0.3)]
    assert ranked(probs, 1) == [("sad", 0.4)]
    assert ranked({}, 3) == []


def test_bgr_arrays_are_flipped(recognizer):
    rgb = _patterned(64, 64, 5)
    a = recognizer(rgb, detect=False).faces[0].probs
    b = recognizer(np.ascontiguousarray(rgb[..., ::-1]), color="bgr", detect=False).faces[0].probs
    c = recognizer(np.ascontiguousarray(rgb[..., ::-1]), detect=False).faces[0].probs
    assert max(abs(a[k] - b[k]) for k in a) < 1e-6
    assert max(abs(a[k] - c[k]) for k in a) > 1e-4  # channel order matters to the model


def test_inputs_of_every_kind_agree(recognizer, tmp_path):
    from PIL import Image

    rgb = _patterned(40, 40, 6)
    path = tmp_path / "face.png"
    Image.fromarray(rgb).save(path)
    results = recognizer([rgb, Image.fromarray(rgb), str(path), path, path.read_bytes()],
                         detect=False)
    probs = [r.faces[0].probs["happy"] for r in results]
    assert max(probs) - min(probs) < 1e-6
    assert results[0].source == "<array 40x40x3>" and results[2].source == str(path)


def test_one_bad_file_in_a_list_does_not_stop_the_rest(recognizer, tmp_path):
    good = tmp_path / "good.png"
    from PIL import Image

    Image.fromarray(_patterned(40, 40, 8)).save(good)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    results = recognizer([good, empty, tmp_path / "missing.jpg", good], detect=False)
    assert [r.error is None for r in results] == [True, False, False, True]
    assert results[1].error == f"{empty} is empty (0 bytes)"
    assert "does not exist" in results[2].error
    assert results[1].faces == () and results[1].width == 0
    # One image alone raises instead.
    with pytest.raises(InputError, match="is empty"):
        recognizer(empty)


def test_results_serialise_to_json(recognizer):
    result = recognizer(_patterned(64, 64, 9), boxes=[(0, 0, 32, 32)])
    data = json.loads(json.dumps(result.to_dict()))
    face = data["faces"][0]
    assert data["width"] == 64 and data["error"] is None
    assert face["box"] == [0, 0, 32, 32] and face["landmarks"] is None
    assert face["label"] == result.faces[0].label
    assert abs(sum(face["probs"].values()) - 1) < 1e-4
    with pytest.raises(AttributeError):
        result.faces[0].label = "happy"  # frozen


def test_classify_crops_of_any_size(recognizer):
    crops = [_patterned(64, 64, 10), _patterned(100, 80, 11), _patterned(20, 20, 12)]
    probs = recognizer.classify_crops(crops)
    assert probs.shape == (3, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert recognizer.classify_crops([]).shape == (0, 7)
    aligned = recognizer.detect_and_align(_patterned(80, 80, 13), detect=False)
    assert aligned[0].crop.shape == (64, 64, 3) and aligned[0].matrix.shape == (2, 3)


def test_grayscale_box_aligned_model(tmp_path):
    """A FER2013-style 48x48 grayscale model gets box crops, converted by its transform."""
    torch.manual_seed(0)
    model = ferkit.create_model("baseline", backbone="resnet10t", input_size=(1, 48, 48),
                                mean=(0.5,), std=(0.5,))
    cfg = model.ferkit_config
    model.ferkit_config = cfg.replace(data=cfg.data.replace(alignment="box", face_margin=0.1))
    rec = ferkit.Recognizer(model)
    face = rec(_patterned(100, 100, 14), boxes=[(20, 20, 70, 80)]).faces[0]
    assert np.allclose(face.crop_matrix, box_matrix((20, 20, 70, 80), (48, 48), 0.1))
    assert abs(sum(face.probs.values()) - 1) < 1e-5


def test_missing_default_model_error_is_clear(monkeypatch):
    # An install whose weights folder went missing (or a build without one) says so plainly.
    monkeypatch.setattr("ferkit.weights.shipped.DEFAULT_NAME", None)
    with pytest.raises(CheckpointError, match="no default model ships"):
        ferkit.Recognizer.from_pretrained()


def test_model_without_config_is_refused():
    with pytest.raises(FerkitError, match="ferkit_config"):
        ferkit.Recognizer(torch.nn.Linear(2, 2))


def test_detector_object_and_options(tiny_checkpoint):
    class OneFace:
        name = "fixed"

        def detect(self, image):
            return [ferkit.faces.Detection((5, 5, 25, 25), 0.5, None)]

    import ferkit.faces

    rec = ferkit.Recognizer.from_pretrained(tiny_checkpoint, detector=OneFace())
    face = rec(_patterned(40, 40, 15)).faces[0]
    assert face.box == (5, 5, 25, 25) and face.detector_score == 0.5
    with pytest.raises(FerkitError, match="unknown face detector"):
        _ = ferkit.Recognizer.from_pretrained(tiny_checkpoint, detector="nope").detector


def test_default_backend_is_plain_pytorch_and_writes_nothing(tiny_checkpoint, tmp_path,
                                                              monkeypatch):
    # backend="auto" would export to ONNX, time both backends and write to the cache: opt-in.
    cache = tmp_path / "cache"
    monkeypatch.setenv("FERKIT_CACHE", str(cache))
    for rec in (ferkit.Recognizer.from_pretrained(str(tiny_checkpoint)),
                ferkit.Recognizer(ferkit.load_checkpoint(tiny_checkpoint))):
        result = rec(np.full((64, 64, 3), 90, np.uint8), detect=False)
        assert rec.backend.name == "torch"
        assert abs(sum(result.faces[0].probs.values()) - 1) < 1e-5
    assert not cache.exists()
