"""ferkit.explain: values of maps, the Grad-CAM sanity check on a learned synthetic task,
architecture attention, projection to the photo, figures, embeddings, training plots, CLI."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import ferkit
from ferkit.data import FakeFER
from ferkit.data.transforms import eval_transform
from ferkit.errors import FerkitError
from ferkit.explain import (
    ExpressionTarget,
    GradCAM,
    crop_to_image,
    default_target_layer,
    explain,
    explain_tensor,
    image_to_crop,
    project_map,
)
from ferkit.models.output import FEROutput


# --------------------------------------------------------------------------- helpers
class TinyCNN(nn.Module):
    """Small CNN for the synthetic task.  FakeFER codes the class by *where* the square is,
    so the input gets two coordinate channels (CoordConv) and the head is global average
    pooling + linear: the architecture Grad-CAM was derived for (CAM = Grad-CAM there)."""

    def __init__(self, num_classes: int = 4, in_chans: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans + 2, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        )
        self.fc = nn.Linear(32, num_classes)
        self.num_classes = num_classes

    def default_cam_layer(self) -> nn.Module:
        return self.features

    def forward(self, x):
        b, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-1, 1, w).view(1, 1, 1, w).expand(b, 1, h, w)
        fmap = self.features(torch.cat([x, ys, xs], 1))
        embedding = fmap.mean((2, 3))
        return FEROutput(logits=self.fc(embedding), embedding=embedding, feature_map=fmap)


CLASSES4 = ("neutral", "happy", "sad", "surprise")


def _with_config(model: nn.Module, labels=CLASSES4, input_size=(1, 48, 48)) -> nn.Module:
    model.ferkit_config = ferkit.ModelConfig(
        architecture="tiny", label_names=labels,
        data=ferkit.DataConfig(input_size=input_size, mean=(0.5,) * input_size[0],
                               std=(0.5,) * input_size[0], alignment="box"))
    return model


def _batch(dataset: FakeFER, indices) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(dataset[i] for i in indices), strict=True)
    return torch.stack(xs), torch.as_tensor(ys)


class _OneThread:
    """Tiny convs on a shared 2-core machine: one thread beats two."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


def _train_tiny(steps: int, seed: int = 0, size: int = 24) -> tuple[nn.Module, FakeFER]:
    torch.manual_seed(seed)
    model = _with_config(TinyCNN(), input_size=(1, size, size))
    data = FakeFER(512, image_size=size, classes=CLASSES4, seed=seed,
                   transform=eval_transform(model.ferkit_config.data))
    local = {c: i for i, c in enumerate(ferkit.CANONICAL.index(n) for n in CLASSES4)}
    xs, ys = _batch(data, range(len(data)))  # decode once; steps index tensors
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny convs: one thread beats two on a shared 2-core box
    ys = torch.tensor([local[int(v)] for v in ys])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        pick = torch.from_numpy(rng.integers(0, len(data), 32))
        loss = nn.functional.cross_entropy(model(xs[pick]).logits, ys[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    return model.eval(), data


class FixedFaces:
    """A face detector that "finds" known boxes (no landmarks: box alignment)."""

    def __init__(self, boxes=((20, 30, 120, 130), (150, 40, 230, 120))):
        self.boxes = boxes

    def detect(self, image_rgb):
        from ferkit.faces.base import Detection

        return [Detection(box=tuple(map(float, b)), score=0.9) for b in self.boxes]


def _recognizer(model, **kw):
    return ferkit.Recognizer(model, detector=FixedFaces(**kw))


@pytest.fixture(scope="module")
def trained_tiny():
    return _train_tiny(150)


# --------------------------------------------------------------------------- Grad-CAM
def test_gradcam_maps_are_normalised_and_hooks_released():
    torch.manual_seed(0)
    model = ferkit.create_model("baseline", backbone="resnet10t", input_size=(3, 64, 64))
    x = torch.randn(3, 3, 64, 64)
    for method in ("gradcam", "gradcam++"):
        r = explain_tensor(model, x, method=method, target=ExpressionTarget("happiness"))
        m = r.maps[method]
        assert m.shape == (3, 64, 64) and m.dtype == np.float32
        assert np.isfinite(m).all() and m.min() >= 0.0 and m.max() <= 1.0
        assert r.target_index == [1, 1, 1]
        np.testing.assert_allclose(r.probs.sum(1), 1.0, atol=1e-5)
    layer = model.default_cam_layer()
    with GradCAM(model) as cam:
        assert len(layer._forward_hooks) == 2  # activation + gradient hooks while open
        top = cam(x)
    assert len(layer._forward_hooks) == 0
    assert top.target_index == r.probs.argmax(1).tolist()


@pytest.mark.parametrize(("input_size", "options", "stage"), [
    ((1, 48, 48), {}, 5),                       # layer4 2x2, layer3 3x3 -> layer2 6x6
    ((3, 112, 112), {}, 6),                     # layer4 4x4 -> layer3 7x7
    ((3, 224, 224), {}, 7),                     # layer4 7x7
    ((1, 48, 48), {"output_stride": 8}, 7),     # dilated: layer4 is 6x6 already
    ((1, 16, 16), {}, 7),                       # nothing reaches 6x6 -> the deepest
])
def test_default_cam_layer_is_the_deepest_with_6x6_cells(input_size, options, stage):
    model = ferkit.create_model("dsan", input_size=input_size, **options).train()
    assert default_target_layer(model) is model.features[stage]
    assert model.training  # the probe's forward pass leaves the mode as it was
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    assert default_target_layer(model) is model.features[stage]
    handle.remove()
    assert calls == []  # measured once per model, not once per explainer
    x = torch.randn(2, *input_size)
    maps = explain_tensor(model, x, method="gradcam++").maps["gradcam++"]
    assert maps.shape == (2, *input_size[1:])
    # An explicit layer still wins.
    with GradCAM(model, "features.7") as cam:
        assert cam.target_layer is model.features[7]


def test_errors_in_with_block_propagate_and_bad_targets_are_clear():
    model = ferkit.create_model("baseline_test")
    with pytest.raises(IndexError), GradCAM(model):  # pytorch-grad-cam would swallow it
        raise IndexError("boom")
    with pytest.raises(FerkitError, match="not one of this model's classes"):
        explain_tensor(model, torch.randn(1, 3, 32, 32), target="contempt")
    with pytest.raises(FerkitError, match="out of range"):
        explain_tensor(model, torch.randn(1, 3, 32, 32), target=9)
    with pytest.raises(FerkitError, match="no layer 'backbone.nope'"):
        explain_tensor(model, torch.randn(1, 3, 32, 32), target_layer="backbone.nope")
    unused = nn.Conv2d(3, 3, 1)
    model.unused = unused
    with pytest.raises(FerkitError, match="did not run"):
        explain_tensor(model, torch.randn(1, 3, 32, 32), target_layer=unused)
    with pytest.raises(FerkitError, match="unknown explanation method"):
        explain_tensor(model, torch.randn(1, 3, 32, 32), method="magic")


def _assert_cam_on_label_region(model, data, n=24):
    x, y = _batch(data, range(n))
    canon_to_local = {ferkit.CANONICAL.index(n): i for i, n in enumerate(CLASSES4)}
    local = [canon_to_local[int(v)] for v in y]
    r = explain_tensor(model, x, method="gradcam", target=local)
    accuracy = float((r.probs.argmax(1) == np.array(local)).mean())
    assert accuracy >= 0.9, accuracy  # the model learned the task
    ratios = []
    for cam, label in zip(r.maps["gradcam"], local, strict=True):
        top, left, bottom, right = data.region(label)
        inside = np.zeros_like(cam, bool)
        inside[top:bottom, left:right] = True
        ratios.append(cam[inside].mean() / max(cam[~inside].mean(), 1e-6))
    assert min(ratios) > 1.0, ratios
    assert np.median(ratios) > 2.0, ratios


def test_gradcam_highlights_the_region_that_carries_the_label(trained_tiny):
    """After 150 steps on FakeFER (class = where the bright square is), the Grad-CAM of
    the true class is stronger inside the class's square than outside, on every sample
    (measured: min ratio 2.3, median 4.2 at 24 px)."""
    _assert_cam_on_label_region(*trained_tiny)


@pytest.mark.slow
def test_gradcam_sanity_at_48px_longer_training():
    _assert_cam_on_label_region(*_train_tiny(300, seed=1, size=48), n=48)


def test_gradcam_plusplus_sanity_on_the_same_model(trained_tiny):
    model, data = trained_tiny
    x, _ = _batch(data, range(8))
    r = explain_tensor(model, x, method="gradcam++")  # top class
    for cam, label in zip(r.maps["gradcam++"], r.target_index, strict=True):
        top, left, bottom, right = data.region(label)
        inside = np.zeros_like(cam, bool)
        inside[top:bottom, left:right] = True
        assert cam[inside].mean() > cam[~inside].mean()


# --------------------------------------------------------------------------- attention
class _StubAttention(nn.Module):
    """Returns the attention tensors of a given architecture, with known values."""

    def __init__(self, attention_fn, num_classes=7):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.fc = nn.Linear(8, num_classes)
        self.attention_fn = attention_fn

    def forward(self, x):
        fmap = self.conv(x)
        logits = self.fc(fmap.mean((2, 3)))
        return FEROutput(logits=logits, embedding=fmap.mean((2, 3)), feature_map=fmap,
                         attention=self.attention_fn(x, fmap))


def _stub(attention_fn, input_size=(3, 32, 32)):
    model = _StubAttention(attention_fn)
    return _with_config(model, labels=ferkit.CANONICAL[:7], input_size=input_size)


def test_attention_on_a_model_without_attention_names_the_working_methods():
    model = ferkit.create_model("baseline_test")
    with pytest.raises(FerkitError, match=r"gradcam, gradcam\+\+"):
        explain_tensor(model, torch.randn(1, 3, 32, 32), method="attention")


def test_dan_like_attention_gives_per_head_maps_and_channel_weights():
    def dan(x, fmap):
        b = x.shape[0]
        spatial = torch.zeros(b, 3, 8, 8)
        spatial[:, 0, :4, :4] = 1.0  # head 0 looks top-left
        spatial[:, 1, 4:, 4:] = 2.0  # head 1 bottom-right, twice as strong
        spatial[:, 2] = 0.5  # head 2 uniform
        return {"spatial": spatial, "channel": torch.rand(b, 3, 8), "heads": torch.rand(b, 3, 8)}

    r = explain_tensor(_stub(dan), torch.randn(2, 3, 32, 32), method="attention")
    assert set(r.maps) == {"spatial", "spatial[0]", "spatial[1]", "spatial[2]"}
    h0, h1, h2 = r.maps["spatial[0]"][0], r.maps["spatial[1]"][0], r.maps["spatial[2]"][0]
    assert h0.shape == (32, 32)
    assert h0[:12, :12].mean() > 0.45 and h0[20:, 20:].max() == 0  # jointly scaled: 1/2
    assert h1[20:, 20:].min() == pytest.approx(1.0)
    assert np.allclose(h2, 0.25)  # 0.5 / max 2.0: the uniform head stays weaker
    assert r.vectors["channel"].shape == (2, 3, 8)
    for m in r.maps.values():
        assert np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1


def test_dacl_like_weights_are_projected_on_the_feature_map():
    def dacl(x, fmap):
        w = torch.zeros(x.shape[0], 8)
        w[:, 3] = 1.0
        return {"element_weights": w}

    model = _stub(dacl)
    x = torch.randn(1, 3, 32, 32)
    r = explain_tensor(model, x, method="attention")
    assert r.vectors["element_weights"].shape == (1, 8)
    channel3 = torch.relu(model.conv(x)[0, 3]).detach()
    expected = nn.functional.interpolate(channel3[None, None], size=(32, 32), mode="bilinear")
    expected = (expected - expected.min()) / (expected.max() - expected.min())
    np.testing.assert_allclose(r.maps["element_weights"][0], expected[0, 0].numpy(),
                               atol=1e-5)


def test_dsan_like_streams():
    def dsan(x, fmap):
        b = x.shape[0]
        return {"gfe_weights": torch.rand(b, 8), "mff_maps": torch.rand(b, 4, 8, 8)}

    r = explain_tensor(_stub(dsan), torch.randn(2, 3, 32, 32), method="attention")
    assert {"mff_maps", "mff_maps[3]", "gfe_weights"} <= set(r.maps)
    assert r.vectors["gfe_weights"].shape == (2, 8)


def _stn_stub(theta_value):
    def stn(x, fmap):
        theta = torch.as_tensor(theta_value, dtype=torch.float32).expand(x.shape[0], 2, 3)
        grid = nn.functional.affine_grid(theta, [x.shape[0], 1, 48, 48], align_corners=False)
        return {"theta": theta, "warped": nn.functional.grid_sample(x, grid,
                                                                    align_corners=False)}

    return _stub(stn, input_size=(1, 48, 48))


def test_identity_stn_view_equals_the_input():
    model = _stn_stub([[1.0, 0, 0], [0, 1.0, 0]])
    model.conv = nn.Conv2d(1, 8, 3, stride=4, padding=1)
    img = (np.random.default_rng(0).random((180, 260, 3)) * 255).astype(np.uint8)
    faces = explain(_recognizer(model), img, method="attention")
    face = faces[0]
    np.testing.assert_allclose(face.images["stn_warped_crop"], face.crop / 255.0, atol=1e-6)
    gray = np.asarray(Image.fromarray(face.crop).convert("L"), np.float32) / 255
    # (torchvision's and PIL's grayscale round differently by at most one level)
    np.testing.assert_allclose(face.images["stn_input"], gray, atol=1.01 / 255)
    np.testing.assert_allclose(face.images["stn_warped"], face.images["stn_input"], atol=1e-5)
    ys, xs = np.mgrid[0:48, 0:48]
    np.testing.assert_allclose(face.grids["stn"], np.stack([xs, ys], -1), atol=1e-4)


def test_zoomed_stn_grid_covers_the_centre():
    model = _stn_stub([[0.5, 0, 0], [0, 0.5, 0]])  # samples the central half
    model.conv = nn.Conv2d(1, 8, 3, stride=4, padding=1)
    img = (np.random.default_rng(0).random((180, 260, 3)) * 255).astype(np.uint8)
    grid = explain(_recognizer(model), img, method="attention")[0].grids["stn"]
    # pixel centres 0..47 (centre 23.5) sample 23.5 ± 0.5 * 23.5 in the input
    assert grid[..., 0].min() == pytest.approx(11.75, abs=1e-3)
    assert grid[..., 0].max() == pytest.approx(35.25, abs=1e-3)


# --------------------------------------------------------------------------- projection
def test_projection_round_trip_puts_a_crop_point_on_the_right_pixel():
    angle = np.deg2rad(20)
    s = 0.6
    m = np.array([[s * np.cos(angle), -s * np.sin(angle), -30.0],
                  [s * np.sin(angle), s * np.cos(angle), -40.0]])
    crop_pt = np.array([[40.0, 25.0]])
    img_pt = crop_to_image(crop_pt, m)
    assert 100 < img_pt[0, 0] < 200 and 30 < img_pt[0, 1] < 100  # inside the photo
    np.testing.assert_allclose(image_to_crop(img_pt, m), crop_pt, atol=1e-9)
    heat = np.zeros((64, 64), np.float32)
    heat[25, 40] = 1.0
    heat = cv2.GaussianBlur(heat, (0, 0), 2)
    projected = project_map(heat / heat.max(), m, (240, 320))
    peak = np.unravel_index(projected.argmax(), projected.shape)
    assert abs(peak[1] - img_pt[0, 0]) <= 1 and abs(peak[0] - img_pt[0, 1]) <= 1
    assert projected.max() > 0.9


def test_explain_photo_maps_at_crop_size_and_projected(tiny_checkpoint, tmp_path):
    from ferkit.explain.visualize import face_figure, overlay_on_image

    model = ferkit.load_checkpoint(tiny_checkpoint)
    img = np.zeros((180, 260, 3), np.uint8)
    img[40:120, 160:220] = 200
    recognizer = _recognizer(model)
    faces = explain(recognizer, img, method="gradcam", target="sad")
    assert len(faces) == 2 and all(f.target == "sad" for f in faces)
    plain = recognizer(img)
    for f, r in zip(faces, plain.faces, strict=True):
        assert f.maps["gradcam"].shape == f.crop.shape[:2] == (64, 64)
        assert 0 <= f.maps["gradcam"].min() <= f.maps["gradcam"].max() <= 1
        # same crops, same preprocessing: the probabilities are the Recognizer's
        assert f.face.box == r.box and f.face.crop_matrix == r.crop_matrix
        for name, p in r.probs.items():
            assert f.face.probs[name] == pytest.approx(p, abs=1e-5)
    # The projected map at a photo pixel is the crop map at that pixel's crop coordinates.
    heat = faces[1].maps["gradcam"]
    projected = faces[1].project(None, img.shape[:2])
    inside = 0
    for x, y in [(150, 40), (170, 60), (190, 80), (210, 100), (229, 119), (5, 5), (100, 170)]:
        (u, v), = image_to_crop([[x, y]], faces[1].matrix)
        if 0 <= u <= 62 and 0 <= v <= 62:
            u0, v0 = int(u), int(v)
            fu, fv = u - u0, v - v0
            expected = ((1 - fu) * (1 - fv) * heat[v0, u0] + fu * (1 - fv) * heat[v0, u0 + 1]
                        + (1 - fu) * fv * heat[v0 + 1, u0] + fu * fv * heat[v0 + 1, u0 + 1])
            assert projected[y, x] == pytest.approx(expected, abs=0.02)
            inside += 1
        elif u < -1 or v < -1 or u > 64 or v > 64:
            assert projected[y, x] == 0
    assert inside == 5
    figure = face_figure(faces[0])
    overlay = overlay_on_image(img, faces)
    figure.save(tmp_path / "face.png")
    overlay.save(tmp_path / "overlay.png")
    assert figure.size[0] > 800 and overlay.size[1] == 180 and overlay.size[0] > 260


def test_centre_cropping_model_maps_cover_only_the_centre_it_saw(tiny_checkpoint):
    # crop_pct 0.5 (DACL uses 0.875): the 64 px crop is resized to 128 and its centre 64
    # fed to the model, i.e. the crop's central 32x32.
    model = ferkit.load_checkpoint(tiny_checkpoint)
    cfg = model.ferkit_config
    model.ferkit_config = cfg.replace(data=cfg.data.replace(crop_pct=0.5))
    img = np.random.default_rng(0).integers(0, 256, (180, 260, 3), dtype=np.uint8)
    (face, _) = explain(_recognizer(model), img, method="gradcam")
    heat = face.maps["gradcam"]
    assert heat.shape == (64, 64)
    border = np.ones((64, 64), bool)
    border[16:48, 16:48] = False
    assert heat[border].max() == 0 and heat[16:48, 16:48].max() > 0


# --------------------------------------------------------------------------- real architectures
def test_dan_head_maps_differ_after_partition_loss_training():
    from ferkit.losses.dan import PartitionLoss

    torch.manual_seed(0)
    model = ferkit.create_model("dan_test", num_head=4)
    data = FakeFER(48, image_size=64, channels=3,
                   transform=eval_transform(model.ferkit_config.data))
    x, y = _batch(data, range(48))
    partition = PartitionLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    model.train()
    with _OneThread():
        for step in range(6):
            out = model(x[step * 8:(step + 1) * 8])
            loss_p = partition.from_output(out)
            loss = nn.functional.cross_entropy(out.logits, y[step * 8:(step + 1) * 8]) + loss_p
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss_p.item())
    assert losses[-1] < losses[0]  # the heads were pushed apart
    r = explain_tensor(model, x[:8], method="attention")
    heads = np.stack([r.maps[f"spatial[{i}]"] for i in range(4)])
    diffs = [np.abs(heads[i] - heads[j]).mean() for i in range(4) for j in range(i + 1, 4)]
    assert min(diffs) > 0.05, diffs
    assert r.vectors["channel"].shape == (8, 4, 64)
    assert ((r.vectors["channel"] > 0) & (r.vectors["channel"] < 1)).all()  # sigmoid


def test_identity_initialised_deep_emotion_stn_view_equals_the_input():
    torch.manual_seed(0)
    model = ferkit.create_model("deep_emotion")
    img = (np.random.default_rng(0).random((180, 260, 3)) * 255).astype(np.uint8)
    face = explain(_recognizer(model), img, method="attention")[0]
    assert face.maps == {}
    np.testing.assert_allclose(face.vectors["theta"], [[1, 0, 0], [0, 1, 0]], atol=1e-6)
    np.testing.assert_allclose(face.images["stn_warped"], face.images["stn_input"], atol=1e-5)
    np.testing.assert_allclose(face.images["stn_warped_crop"], face.crop / 255.0, atol=1e-6)
    r = explain_tensor(model, torch.randn(2, 1, 48, 48), method="gradcam")
    assert np.isfinite(r.maps["gradcam"]).all()


@pytest.mark.parametrize("name", ["dacl", "dsan"])
def test_dacl_dsan_attention_on_the_real_models(name):
    torch.manual_seed(0)
    model = ferkit.create_model(name, input_size=(3, 64, 64))
    r = explain_tensor(model, torch.randn(2, 3, 64, 64), method="attention")
    key = "element_weights" if name == "dacl" else "gfe_weights"
    assert r.vectors[key].shape == (2, 512)
    assert not any(k.endswith("logits") for k in r.vectors)
    for m in r.maps.values():
        assert m.shape == (2, 64, 64) and np.isfinite(m).all()
        assert m.min() >= 0 and m.max() <= 1
    if name == "dsan":
        assert {"mff_maps", "mff_maps[0]", "mff_maps[3]"} <= set(r.maps)


# --------------------------------------------------------------------------- embeddings, plots
def test_embeddings_png_csv_with_class_means(tmp_path):
    from ferkit.explain.embeddings import embed_checkpoint

    torch.manual_seed(0)
    model = ferkit.create_model("baseline_test")
    ckpt = ferkit.save_checkpoint(model, tmp_path / "ckpt")
    data = FakeFER(60, image_size=32, channels=3, seed=1)
    result = embed_checkpoint(ckpt, data, tmp_path / "emb", max_samples=50)
    assert result.png.is_file() and result.num_samples == 50
    rows = result.csv.read_text().splitlines()
    assert rows[0] == "kind,x,y,label,predicted"
    samples = [r for r in rows[1:] if r.startswith("sample,")]
    means = [r.split(",") for r in rows[1:] if r.startswith("class_mean,")]
    assert len(samples) == 50
    assert len(means) == len({r.split(",")[3] for r in samples})
    # a class mean is the mean of that class's projected points
    pts = np.array([[float(v) for v in r.split(",")[1:3]] for r in samples
                    if r.split(",")[3] == means[0][3]])
    np.testing.assert_allclose(pts.mean(0), [float(means[0][1]), float(means[0][2])],
                               atol=1e-3)


def test_embeddings_use_learned_centres_when_the_weights_hold_them(tmp_path):
    from ferkit.explain.embeddings import compute_embeddings

    model = ferkit.create_model("baseline_test")
    model.register_buffer("centers", torch.randn(7, model.num_features))
    emb = compute_embeddings(model, FakeFER(10, image_size=32, channels=3))
    assert emb.centres.shape == (7, model.num_features)
    np.testing.assert_array_equal(emb.centre_labels, np.arange(7))


def _fake_run(tmp_path):
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    lines = ["epoch,step,train/loss,val/loss,val/acc,val/f1_macro"]
    for epoch in range(4):
        lines += [f"{epoch},{epoch * 10 + 4},{2 - epoch * 0.4},,,",
                  f"{epoch},{epoch * 10 + 9},{1.9 - epoch * 0.4},,,",
                  f"{epoch},{epoch * 10 + 9},,{2.1 - epoch * 0.3},{0.3 + 0.1 * epoch},"
                  f"{0.2 + 0.1 * epoch}"]
    (run / "logs" / "metrics.csv").write_text("\n".join(lines) + "\n")
    # the layout of ferkit.evaluation.EvaluationReport.to_json (`ferkit evaluate --json`)
    (run / "eval.json").write_text(json.dumps({
        "label_names": ["neutral", "happy", "sad"], "num_samples": 30, "accuracy": 0.6,
        "per_class": {}, "confusion": [[8, 1, 1], [0, 9, 1], [3, 2, 5]]}))
    return run


def test_plot_run_curves_and_confusion(tmp_path):
    from ferkit.training.plots import find_confusion, plot_run

    run = _fake_run(tmp_path)
    paths = plot_run(run)
    assert [p.name for p in paths] == ["curves.png", "confusion_matrix.png"]
    matrix, labels, _ = find_confusion(run)
    assert labels == ["neutral", "happy", "sad"] and matrix[2, 0] == 3
    with pytest.raises(FerkitError, match="no metrics.csv"):
        (tmp_path / "empty").mkdir()
        plot_run(tmp_path / "empty")


def test_old_plot_names_in_explain_still_work_with_a_deprecation_warning():
    from ferkit import figures
    from ferkit.training import plots

    with pytest.warns(DeprecationWarning, match="ferkit.training.plots.plot_run"):
        from ferkit.explain.plots import plot_run
    assert plot_run is plots.plot_run
    with pytest.warns(DeprecationWarning, match="ferkit.figures.plot_confusion"):
        from ferkit.explain.plots import plot_confusion
    assert plot_confusion is figures.plot_confusion
    with pytest.raises(ImportError):
        from ferkit.explain.plots import no_such_plot  # noqa: F401


def test_cli_plot(tmp_path, capsys):
    from ferkit.cli import main

    run = _fake_run(tmp_path)
    assert main(["plot", str(run), "--out", str(tmp_path / "figs"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["png"].rsplit("/", 1)[1] for r in rows] == ["curves.png", "confusion_matrix.png"]
    assert main(["plot", str(tmp_path / "missing")]) == 2


def test_cli_embed_on_an_image_folder(tmp_path, capsys):
    from ferkit.cli import main

    torch.manual_seed(0)
    ckpt = ferkit.save_checkpoint(ferkit.create_model("baseline_test"), tmp_path / "ckpt")
    fake = FakeFER(24, image_size=32, channels=3, classes=("happy", "sad", "anger"), seed=2)
    for i in range(len(fake)):
        folder = tmp_path / "faces" / "val" / ferkit.CANONICAL[fake.targets[i]]
        folder.mkdir(parents=True, exist_ok=True)
        fake.load_image(i).save(folder / f"{i}.png")
    code = main(["embed", str(ckpt), "--data", str(tmp_path / "faces"), "--split", "val",
                 "--out", str(tmp_path / "emb"), "--format", "json"])
    assert code == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["samples"] == 24
    lines = (tmp_path / "emb" / "embedding_tsne.csv").read_text().splitlines()
    assert sorted({r.split(",")[3] for r in lines[1:]}) == ["anger", "happy", "sad"]
    assert Image.open(tmp_path / "emb" / "embedding_tsne.png").size[0] > 500


def test_cli_explain_a_real_photo(tiny_checkpoint, tmp_path, capsys):
    from conftest import shared_path
    from ferkit.cli import main

    photo = shared_path("face_photos", "face_recognition", "examples", "two_people.jpg")
    code = main(["explain", str(photo), "--model", str(tiny_checkpoint), "--method", "cam",
                 "--target", "happy", "--out", str(tmp_path / "fig.png"),
                 "--overlay", str(tmp_path / "whole.png"), "--format", "json"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and {r["target"] for r in rows} == {"happy"}
    for r in rows:
        assert Image.open(r["figure"]).size[0] > 800
    assert Image.open(tmp_path / "whole.png").size[1] == Image.open(photo).size[1]
    assert main(["explain", str(photo), "--model", str(tiny_checkpoint),
                 "--method", "attention"]) == 2  # baseline has no attention: one-line error
    assert "gradcam" in capsys.readouterr().err
