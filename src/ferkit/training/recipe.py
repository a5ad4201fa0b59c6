"""Training recipes: one YAML file says everything a run needs.

A recipe holds the model spec, the data spec, augmentation, optimiser, scheduler, losses and
trainer settings.  Recipes for the published setups ship in ``ferkit/training/recipes/``
(``ferkit train --recipe dan_rafdb``); any YAML file with the same keys works too.  Values
are type-checked, unknown keys fail with close-match suggestions, and ``--set key=value``
overrides use the same dotted paths (``trainer.epochs=5``, ``losses.1.weight=0.5``).

Example:
    >>> from ferkit.training.recipe import load_recipe
    >>> recipe = load_recipe("fer2013_resnet18", overrides=["trainer.epochs=3"])
    >>> recipe.trainer.epochs, recipe.model.name
    (3, 'baseline')
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from ferkit.errors import FerkitError

RECIPE_DIR = Path(__file__).parent / "recipes"


@dataclass
class ModelSpec:
    """What :func:`ferkit.create_model` builds.

    ``pretrained`` starts from a ferkit checkpoint (same classes); ``kwargs`` are the
    architecture's own options (``backbone``, ``num_head``, ``backbone_weights`` …).
    ``interpolation``, ``alignment``, ``face_margin`` and ``crop_pct`` say how inference must
    crop faces to match the training images (FER2013's loose box crops: ``box``; DACL's
    Resize(256) + CenterCrop(224): ``crop_pct: 0.875``).  ``expected_weights`` names the
    weights the recipe's source starts from (e.g. the MS-Celeb-1M ResNet-18): a run
    without ``pretrained`` or ``kwargs.backbone_weights`` then warns loudly and says so in
    its checkpoints' provenance.
    """

    name: str = "baseline"
    kwargs: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    label_names: list[str] | None = None
    input_size: list[int] | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    interpolation: str | None = None
    alignment: Literal["five_point", "box"] | None = None
    face_margin: float | None = None
    crop_pct: float | None = None
    pretrained: str | None = None
    expected_weights: str | None = None


@dataclass
class DataSpec:
    """Where the images come from: :func:`ferkit.data.open_dataset` arguments per split.

    ``format: fake`` uses :class:`ferkit.data.FakeFER` (tests, benchmarks); ``options``
    go to the adapter (for ``fake``: ``size``, ``image_size``, ``noise``).
    """

    format: str | None = None
    source: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    balanced_sampler: bool = False
    num_workers: int = 2


@dataclass
class OptimizerSpec:
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])


@dataclass
class SchedulerSpec:
    """Per-epoch learning-rate schedule of the main parameter group.

    ``step``: ×gamma every ``step_size`` epochs; ``exponential``: ×gamma every epoch;
    ``cosine``: cosine to ``min_lr_ratio``×lr over the run; ``none``: constant.
    ``warmup_epochs`` ramps linearly from lr/10 first.
    """

    name: Literal["none", "step", "exponential", "cosine"] = "none"
    step_size: int = 10
    gamma: float = 0.1
    min_lr_ratio: float = 0.0
    warmup_epochs: int = 0


@dataclass
class LossSpec:
    """One term of the training loss: ``weight * loss``.

    ``name`` is ``cross_entropy`` (soft-target CE when the data gives distributions) or an
    auxiliary loss from :mod:`ferkit.losses` (``affinity``, ``partition``, ``center``,
    ``sparse_center``, ``recalibration``).  ``optimizer`` gives the loss's own parameters
    (centres) their own settings, as DACL's separate SGD does: ``{lr: 0.5, momentum: 0,
    weight_decay: 0, scheduled: false}``; without it they join the main group (DAN).
    """

    name: str = "cross_entropy"
    weight: float = 1.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None


@dataclass
class TrainerSpec:
    """Run settings passed to Lightning's ``Trainer`` (``devices``/``strategy`` as-is)."""

    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    precision: str = "auto"
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    deterministic: bool = False
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    # Lightning's meaning: an int is a number of batches, a float a fraction of the epoch, so
    # ``limit_train_batches: 1`` (one batch) must not become 1.0 (the whole epoch).
    limit_train_batches: int | float = 1.0
    limit_val_batches: int | float = 1.0
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 50
    monitor: Literal["val/acc", "val/f1_macro", "val/loss"] = "val/acc"
    detect_nonfinite: bool = True
    progress_bar: bool = True
    # NHWC layout for convolutions: up to 1.4x faster ResNet-18 training on AVX2 CPUs (one
    # probe; another saw no gain: benchmarks/README_training.md); only the memory order differs.
    channels_last: bool = True
    # torch.compile the training forward (the saved model and its checkpoints are unchanged):
    # 2.5x DSAN's fp32 training speed on 2 AVX2 cores, after a compile of minutes
    # (benchmarks/README_training.md), so it pays on long runs only.
    compile: bool = False


@dataclass
class Recipe:
    """A whole training setup; ``source`` documents where the hyperparameters come from.

    ``faithful_to: owner/repo@commit`` declares that the recipe trains as that reference
    code does (optimiser, schedule, transforms, loss weights); the test suite
    (tests/test_faithful_recipes.py) checks every such recipe against values read from the
    reference's code, and docs/training.md lists each setting with its file:line.
    """

    name: str = "custom"
    source: str = ""
    faithful_to: str | None = None
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    augment: dict[str, Any] = field(default_factory=dict)
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    losses: list[LossSpec] = field(default_factory=lambda: [LossSpec()])
    trainer: TrainerSpec = field(default_factory=TrainerSpec)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


#: ``owner/repo@commit``: a GitHub repository and a 7-40 hex digit commit.
FAITHFUL_TO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[0-9a-f]{7,40}")


class RecipeWarning(UserWarning):
    """A run that will not reproduce what its recipe's source reports."""


def run_warnings(recipe: Recipe) -> list[str]:
    """What makes this run differ from the setup its recipe reproduces, one line each:
    missing pretrained weights the source starts from."""
    found: list[str] = []
    model = recipe.model
    if model.expected_weights and not (model.pretrained or model.kwargs.get("backbone_weights")):
        found.append(
            f"recipe {recipe.name!r} expects pretrained weights ({model.expected_weights}) but "
            "none were given: the model starts from random weights and will land far below "
            "the published results. Pass --set model.kwargs.backbone_weights=PATH"
        )
    return found


def list_recipes() -> list[str]:
    """Names of the recipes shipped with ferkit."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def recipe_path(name_or_path: str | Path) -> Path:
    """The file for a shipped recipe name or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise FerkitError(f"recipe file {path} not found")
        return path
    shipped = RECIPE_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    close = difflib.get_close_matches(str(name_or_path), list_recipes(), n=3, cutoff=0.4)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise FerkitError(
        f"unknown recipe {str(name_or_path)!r}.{hint} Shipped recipes: "
        f"{', '.join(list_recipes())}; or give a path to a .yaml file"
    )


def load_recipe(name_or_path: str | Path | dict[str, Any],
                overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override (``key=value`` dotted paths) and validate a recipe."""
    if isinstance(name_or_path, dict):
        raw, where = dict(name_or_path), "recipe"
    else:
        path = recipe_path(name_or_path)
        where = str(path)
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise FerkitError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise FerkitError(f"{path} must hold a mapping of recipe keys")
        raw.setdefault("name", path.stem)
    for item in overrides:
        apply_override(raw, item)
    return recipe_from_dict(raw, where=where)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``a.b.c=value`` in ``raw``; the value is parsed as YAML (never ``eval``)."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise FerkitError(f"--set expects key=value (e.g. trainer.epochs=5), got {item!r}")
    parts = key.strip().split(".")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    _check_path(parts)
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[_list_index(part, node, parts[: i + 1])]
            continue
        if not isinstance(node.get(part), (dict, list)):
            node[part] = {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(last, node, parts)] = value
    else:
        node[last] = value


def _list_index(part: str, node: list, parts: list[str]) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise FerkitError(
            f"--set {'.'.join(parts)}: {part!r} is not an index of a list with {len(node)} items"
        )
    return int(part)


def _check_path(parts: list[str]) -> None:
    """Fail early, with suggestions, on a dotted path no recipe field has."""
    hints = typing.get_type_hints(Recipe)
    tp: Any = Recipe
    for i, part in enumerate(parts):
        tp = _strip_optional(tp)
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            if part not in hints:
                _unknown_key(".".join(parts[:i]), part, list(hints))
            tp = hints[part]
        elif typing.get_origin(tp) is list:
            if not part.isdigit():
                raise FerkitError(f"--set {'.'.join(parts)}: {part!r} must be a list index")
            tp = typing.get_args(tp)[0]
        else:
            return  # free-form dicts (kwargs, options, augment) take any key


def recipe_from_dict(raw: dict[str, Any], *, where: str = "recipe") -> Recipe:
    """Build a :class:`Recipe`, checking every key and value type."""
    recipe = _build(Recipe, raw, "", where)
    if recipe.faithful_to is not None and not FAITHFUL_TO.fullmatch(recipe.faithful_to):
        raise FerkitError(
            f"{where}: faithful_to must be 'owner/repo@commit' (a GitHub repository and a 7-40 "
            f"hex digit commit, e.g. yaoing/DAN@4253ad9f), got {recipe.faithful_to!r}"
        )
    try:
        from ferkit.data.transforms import AugmentConfig
    except ImportError:
        return recipe
    if hasattr(AugmentConfig, "from_dict"):
        try:
            AugmentConfig.from_dict(dict(recipe.augment))
        except (FerkitError, TypeError, ValueError) as exc:
            raise FerkitError(f"{where}: augment: {exc}") from exc
    return recipe


def _build(cls: type, raw: Any, prefix: str, where: str) -> Any:
    if not isinstance(raw, dict):
        raise FerkitError(f"{where}: {prefix or 'recipe'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in hints:
            _unknown_key(prefix, str(key), list(hints), where=where)
    values = {k: _convert(hints[k], v, f"{prefix}{k}", where) for k, v in raw.items()}
    return cls(**values)


def _convert(tp: Any, value: Any, key: str, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        # A value already of one of the allowed types keeps it (``int | float``: 1 stays 1).
        exact = [o for o in inner if isinstance(o, type) and type(value) is o]
        if exact or len(inner) == 1:
            return _convert((exact or inner)[0], value, key, where)
        for option in inner:
            with contextlib.suppress(FerkitError):
                return _convert(option, value, key, where)
        names = " or ".join(getattr(o, "__name__", str(o)) for o in inner)
        raise FerkitError(f"{where}: {key} must be {names}, got {value!r}")
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".", where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            choices = ", ".join(repr(c) for c in typing.get_args(tp))
            raise FerkitError(f"{where}: {key} must be one of {choices}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise FerkitError(f"{where}: {key} must be a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_convert(item_tp, v, f"{key}.{i}", where) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise FerkitError(f"{where}: {key} must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise FerkitError(f"{where}: {key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FerkitError(f"{where}: {key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FerkitError(f"{where}: {key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise FerkitError(f"{where}: {key} must be a string, got {value!r}")
        return str(value)
    return value


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        inner = [o for o in typing.get_args(tp) if o is not type(None)]
        return inner[0] if len(inner) == 1 else tp
    return tp


def _unknown_key(prefix: str, key: str, known: list[str], where: str = "--set") -> None:
    full = f"{prefix}.{key}" if prefix and not prefix.endswith(".") else f"{prefix}{key}"
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise FerkitError(
        f"{where}: unknown recipe key {full!r}.{hint} Valid keys here: {', '.join(known)}"
    )
