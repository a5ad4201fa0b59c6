"""AugmentConfig / train_transform and the class-balanced sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from ferkit.config import GRAY48_DATA, IMAGENET_DATA
from ferkit.data import AugmentConfig, ClassBalancedSampler, eval_transform, train_transform
from ferkit.errors import FerkitError


def test_no_augmentation_equals_eval_transform():
    image = Image.fromarray(np.arange(64 * 80, dtype=np.uint32).reshape(64, 80).astype(np.uint8))
    data = IMAGENET_DATA.replace(input_size=(3, 32, 32))
    a = train_transform(data, AugmentConfig.preset("none"))(image)
    assert torch.equal(a, eval_transform(data)(image))


def test_flip_and_erasing_change_the_image():
    image = Image.fromarray(np.tile(np.arange(48, dtype=np.uint8) * 5, (48, 1)))
    torch.manual_seed(0)
    flipped = train_transform(GRAY48_DATA, AugmentConfig(hflip=1.0))(image)
    plain = eval_transform(GRAY48_DATA)(image)
    assert torch.equal(flipped, plain.flip(-1))
    erased = train_transform(GRAY48_DATA, AugmentConfig(hflip=0.0, erasing_p=1.0,
                                                        erasing_scale=(0.2, 0.2)))(image)
    changed = (erased != plain).float().mean().item()
    assert 0.15 < changed < 0.21  # one rectangle of ~20% of the area


@pytest.mark.parametrize("preset", ["none", "flip", "dan", "dacl", "fer2013"])
def test_presets_give_model_input_size(preset):
    torch.manual_seed(0)
    for data in (GRAY48_DATA, IMAGENET_DATA.replace(input_size=(3, 40, 40))):
        if preset == "dacl":  # five crops of a larger resize: needs crop_pct < 1
            data = data.replace(crop_pct=0.875)
        out = train_transform(data, AugmentConfig.preset(preset))(Image.new("RGB", (50, 70)))
        assert tuple(out.shape) == data.input_size and out.dtype == torch.float32


def test_augment_from_dict_checks_keys_and_values():
    cfg = AugmentConfig.from_dict({"rotation": 15, "scale": [0.9, 1.1], "crop_padding": 4})
    assert (cfg.rotation, cfg.scale, cfg.crop_padding) == (15.0, (0.9, 1.1), 4)
    with pytest.raises(FerkitError, match="unknown augment option 'rotate'; did you mean "
                                          "rotation"):
        AugmentConfig.from_dict({"rotate": 10})
    with pytest.raises(FerkitError, match="hflip must be a probability"):
        AugmentConfig(hflip=2)


def test_sampler_balances_and_is_reproducible():
    targets = [0] * 90 + [3] * 9 + [6] * 1
    sampler = ClassBalancedSampler(targets, seed=7, num_samples=3000)
    first = list(sampler)
    counts = Counter(targets[i] for i in first)
    assert all(900 < counts[c] < 1100 for c in (0, 3, 6))
    assert first == list(ClassBalancedSampler(targets, seed=7, num_samples=3000))
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and len(second) == len(sampler) == 3000
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_dataloader_with_adapter_transform_and_sampler(tmp_path):
    from torch.utils.data import DataLoader

    from ferkit.data import open_dataset

    for cls, count in (("happy", 6), ("sad", 2)):
        for i in range(count):
            (tmp_path / "train" / cls).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (20, 24), (40 * i, 0, 0)).save(tmp_path / "train" / cls / f"{i}.png")
    ds = open_dataset(tmp_path, split="train",
                      transform=train_transform(GRAY48_DATA, AugmentConfig.preset("fer2013")))
    sampler = ClassBalancedSampler(ds.targets, seed=0, num_samples=400)
    labels = []
    for x, y in DataLoader(ds, batch_size=50, sampler=sampler):
        assert tuple(x.shape) == (50, 1, 48, 48)
        labels += y.tolist()
    assert set(labels) == {1, 2} and 150 < labels.count(2) < 250  # happy=1, sad=2 balanced
