"""Recipes: every shipped file validates; bad keys and values fail with useful messages."""

from __future__ import annotations

import pytest

from ferkit.errors import FerkitError
from ferkit.training.recipe import RECIPE_DIR, list_recipes, load_recipe

PUBLISHED = {"dan_rafdb", "dan_affectnet7", "dan_affectnet8", "dacl_rafdb", "dacl_affectnet",
             "deep_emotion_fer2013", "dan_convnext_rafdb", "dsan_rafdb", "baseline_rafdb",
             "baseline_center_rafdb", "fer2013_resnet18"}


def test_every_published_setup_has_a_recipe_with_a_source_header():
    assert set(list_recipes()) >= PUBLISHED
    for name in list_recipes():
        text = (RECIPE_DIR / f"{name}.yaml").read_text()
        assert text.startswith("# "), name
        recipe = load_recipe(name)
        assert recipe.name == name and recipe.source, name


def test_reference_hyperparameters():
    dan = load_recipe("dan_rafdb")
    assert (dan.optimizer.name, dan.optimizer.lr, dan.optimizer.weight_decay) == ("sgd", 0.1, 1e-4)
    assert (dan.scheduler.name, dan.scheduler.step_size) == ("step", 10)
    assert dan.trainer.batch_size == 256
    assert [loss.name for loss in dan.losses] == ["cross_entropy", "affinity", "partition"]
    assert all(loss.optimizer is None for loss in dan.losses)  # centres share DAN's SGD
    dacl = load_recipe("dacl_rafdb")
    center = dacl.losses[1]
    assert (center.name, center.weight) == ("sparse_center", 0.01)
    # alpha / lambda = 0.5 / 0.01: the centres move 0.5 x delta c, as in the reference.
    assert center.optimizer.model_dump() == {"lr": 50.0, "momentum": 0.0,
                                             "weight_decay": 0.0, "scheduled": False}
    assert load_recipe("dan_affectnet8").model.num_classes == 8
    assert load_recipe("dan_affectnet7").data.balanced_sampler is True


def test_overrides_are_typed():
    recipe = load_recipe("fer2013_resnet18", ["trainer.epochs=3", "optimizer.lr=1e-3",
                                              "model.kwargs.backbone=resnet10t",
                                              "losses.0.weight=2", "trainer.devices=[0, 1]"])
    assert recipe.trainer.epochs == 3
    assert recipe.optimizer.lr == pytest.approx(1e-3)
    assert recipe.model.kwargs == {"backbone": "resnet10t", "drop_rate": 0.2}
    assert recipe.losses[0].weight == 2.0
    assert recipe.trainer.devices == [0, 1]


@pytest.mark.parametrize(("override", "message"), [
    ("trainer.epoch=3", "unknown recipe key 'trainer.epoch'. Did you mean 'epochs'?"),
    ("optimiser.lr=0.1", "unknown recipe key 'optimiser'. Did you mean 'optimizer'?"),
    ("trainer.epochs=three", "trainer.epochs must be an integer, got 'three'"),
    ("optimizer.name=rmsprop", "optimizer.name must be one of 'sgd', 'adam', 'adamw', got "
                               "'rmsprop'"),
    ("trainer.batch_size=1.5", "trainer.batch_size must be an integer, got 1.5"),
    ("losses.5.weight=1", "'5' is not an index of a list with 1 items"),
    ("trainer.epochs", "--set expects key=value"),
])
def test_bad_overrides_fail_clearly(override, message):
    with pytest.raises(FerkitError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace(".", r"\.")):
        load_recipe("fer2013_resnet18", [override])


def test_bad_recipe_file_names_file_and_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model: {name: baseline}\ntrainer: {epochs: 2, batchsize: 8}\n")
    with pytest.raises(FerkitError, match=r"mine\.yaml: unknown recipe key 'trainer\.batchsize'"
                                          r"\. Did you mean 'batch_size'"):
        load_recipe(path)
    with pytest.raises(FerkitError, match="unknown recipe 'fer2013_resnet'. Did you mean "
                                          "'fer2013_resnet18'"):
        load_recipe("fer2013_resnet")


def test_recipes_name_registered_models_options_and_losses():
    import inspect

    from ferkit.losses import LOSSES
    from ferkit.models.registry import get_model_entry

    for name in list_recipes():
        recipe = load_recipe(name)
        entry = get_model_entry(recipe.model.name)
        params = inspect.signature(entry.builder).parameters
        assert set(recipe.model.kwargs) <= set(params), name
        assert {loss.name for loss in recipe.losses} <= set(LOSSES.names()), name


def test_faithful_to_is_validated(tmp_path):
    recipe = load_recipe("dan_rafdb")
    assert recipe.faithful_to == "yaoing/DAN@4253ad9f80131835e71ed4d7e703d0a6afb39431"
    assert load_recipe("fer2013_resnet18").faithful_to is None
    for bad in ("yaoing/DAN", "yaoing/DAN@main", "DAN@4253ad9", "yaoing/DAN@4253ad9f 1"):
        with pytest.raises(FerkitError, match=r"faithful_to must be 'owner/repo@commit'"):
            load_recipe("dan_rafdb", [f"faithful_to={bad}"])
    path = tmp_path / "mine.yaml"
    path.write_text("faithful_to: [yaoing/DAN]\n")
    with pytest.raises(FerkitError, match=r"mine\.yaml: faithful_to must be a string"):
        load_recipe(path)
    with pytest.raises(FerkitError, match="Did you mean 'faithful_to'"):
        load_recipe("dan_rafdb", ["faithful=yaoing/DAN@4253ad9"])


def test_missing_pretrained_weights_are_reported():
    from ferkit.training.recipe import run_warnings

    (note,) = run_warnings(load_recipe("dan_rafdb"))
    assert "expects pretrained weights (MS-Celeb-1M ResNet-18" in note
    assert "model.kwargs.backbone_weights=PATH" in note
    given = load_recipe("dan_rafdb", ["model.kwargs.backbone_weights=resnet18_msceleb.pth"])
    assert run_warnings(given) == []
    assert run_warnings(load_recipe("fer2013_dsan")) == []  # trained from scratch by design
    for name in ("dacl_rafdb", "dacl_affectnet", "dan_affectnet7", "dan_affectnet8",
                 "dsan_rafdb"):
        assert run_warnings(load_recipe(name)), name


def test_set_keeps_integer_batch_limits_integer():
    # Lightning: int = number of batches, float = fraction of the epoch.
    recipe = load_recipe("fer2013_resnet18", ["trainer.limit_train_batches=1",
                                              "trainer.limit_val_batches=0.25"])
    assert recipe.trainer.limit_train_batches == 1
    assert type(recipe.trainer.limit_train_batches) is int
    assert type(recipe.trainer.limit_val_batches) is float
    assert type(load_recipe("fer2013_resnet18", ["trainer.limit_train_batches=1.0"])
                .trainer.limit_train_batches) is float
    assert type(load_recipe("fer2013_resnet18", ["trainer.gradient_clip_val=1"])
                .trainer.gradient_clip_val) is float  # a float-only field still coerces
    with pytest.raises(FerkitError, match="limit_train_batches must be int or float, got 'x'"):
        load_recipe("fer2013_resnet18", ["trainer.limit_train_batches=x"])


def test_pretrained_weights_start_a_model_with_new_shape_free_options(tmp_path):
    # ferplus_dsan_finetune: the shipped 2x2 DSAN's weights start a 6x6 (dilated) DSAN.
    import torch

    import ferkit
    from ferkit.training.module import build_model
    from ferkit.training.recipe import ModelSpec
    from ferkit.weights import save_checkpoint

    source = ferkit.create_model("dsan", input_size=(1, 48, 48), mean=(0.5,), std=(0.5,))
    source.ferkit_config = source.ferkit_config.replace(temperature=1.7,
                                                        metrics={"acc": 0.5})
    save_checkpoint(source, tmp_path / "ckpt")
    model = build_model(ModelSpec(name="dsan", pretrained=str(tmp_path / "ckpt"),
                                  kwargs={"output_stride": 8, "gfe_min_support": 32}))
    cfg = model.ferkit_config
    assert cfg.model_kwargs == {"output_stride": 8, "gfe_min_support": 32}
    assert cfg.temperature == 1.0 and cfg.metrics == {}  # the old model's, not this one's
    assert cfg.data.input_size == (1, 48, 48)
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 1, 48, 48)).feature_map.shape[-2:] == (6, 6)
    same = build_model(ModelSpec(name="dsan", pretrained=str(tmp_path / "ckpt")))
    assert same.ferkit_config.temperature == 1.7  # no new options: the checkpoint as is
    with pytest.raises(FerkitError, match="change the shapes of .*gfe.score"):
        build_model(ModelSpec(name="dsan", pretrained=str(tmp_path / "ckpt"),
                              kwargs={"gfe_hidden": 32}))
