"""Training recipes: one YAML file says everything a run needs.

A recipe holds the model spec, the data spec, augmentation, optimiser, scheduler, losses and
trainer settings.  Recipes for the published setups ship in ``ferkit/training/recipes/``
(``ferkit train --recipe dan_rafdb``); any YAML file with the same keys works too.  Each
section is a frozen pydantic model (like :class:`ferkit.config.ModelConfig`): values are
type-checked, unknown keys fail with close-match suggestions naming the file and the key,
and ``--set key=value`` overrides use the same dotted paths (``trainer.epochs=5``,
``losses.1.weight=0.5``) and the same types (``trainer.limit_train_batches=1`` stays the
integer 1: one batch, not the whole epoch).

Example:
    >>> from ferkit.training.recipe import load_recipe
    >>> recipe = load_recipe("fer2013_resnet18", overrides=["trainer.epochs=3"])
    >>> recipe.trainer.epochs, recipe.model.name
    (3, 'baseline')
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    WrapValidator,
    create_model,
    field_validator,
)

from ferkit.config import DataConfig
from ferkit.data.transforms import AugmentConfig
from ferkit.errors import FerkitError

RECIPE_DIR = Path(__file__).parent / "recipes"

#: ``owner/repo@commit``: a GitHub repository and a 7-40 hex digit commit.
FAITHFUL_TO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[0-9a-f]{7,40}")


def _no_bool(value: Any) -> Any:
    # pydantic reads true as 1.0; in a recipe it is a mistake, not a number.
    if isinstance(value, bool):
        raise ValueError("must be a number")
    return value


#: A number; ints become floats, YAML 1.1's ``1e-3`` (read as a string) its value.
Float = Annotated[float, BeforeValidator(_no_bool)]


def _int_or_float(value: Any, handler: Any) -> Any:
    try:
        return handler(value)
    except ValidationError:
        raise ValueError("must be int or float") from None


#: Lightning's batch limits: an int counts batches, a float is a fraction of the epoch, so
#: the type of what was written is kept (``1`` stays 1, ``1.0`` stays 1.0).
IntOrFloat = Annotated[StrictInt | Float, WrapValidator(_int_or_float)]


class _Section(BaseModel):
    """A recipe section: frozen, no unknown keys, numbers written where a string goes
    (``precision: 32``) read as that string."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


def _optional_fields(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s fields with their types and limits, each optional (``None``: keep what
    the architecture defines)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        typed = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        fields[name] = (typed | None, None)
    return fields


class _ModelFields(_Section):
    name: str = "baseline"
    kwargs: dict[str, Any] = Field(default_factory=dict)
    num_classes: StrictInt | None = None
    label_names: list[str] | None = None
    pretrained: str | None = None
    expected_weights: str | None = None


# DataConfig's fields (input size, normalisation, face crop), optional: written once, in
# ferkit/config.py, with their limits.
_ModelWithData = create_model("_ModelWithData", __base__=_ModelFields,
                              **_optional_fields(DataConfig))


class ModelSpec(_ModelWithData):  # type: ignore[misc,valid-type]
    """What :func:`ferkit.create_model` builds.

    ``pretrained`` starts from a ferkit checkpoint (same classes); ``kwargs`` are the
    architecture's own options (``backbone``, ``num_head``, ``backbone_weights`` …).
    The fields of :class:`~ferkit.config.DataConfig` (``input_size``, ``mean``, ``std``,
    ``interpolation``, ``alignment``, ``face_margin``, ``crop_pct``), when given, replace the
    architecture's: they say how inference must crop faces to match the training images
    (FER2013's loose box crops: ``alignment: box``; DACL's Resize(256) + CenterCrop(224):
    ``crop_pct: 0.875``).  ``expected_weights`` names the weights the recipe's source starts
    from (e.g. the MS-Celeb-1M ResNet-18): a run without ``pretrained`` or
    ``kwargs.backbone_weights`` then warns loudly and says so in its checkpoints' provenance.
    """

    def data_overrides(self) -> dict[str, Any]:
        """The :class:`~ferkit.config.DataConfig` fields this recipe sets."""
        return {name: getattr(self, name) for name in DataConfig.model_fields
                if getattr(self, name) is not None}


class DataSpec(_Section):
    """Where the images come from: :func:`ferkit.data.open_dataset` arguments per split.

    ``format: fake`` uses :class:`ferkit.data.FakeFER` (tests, benchmarks); ``options``
    go to the adapter (for ``fake``: ``size``, ``image_size``, ``noise``).
    """

    format: str | None = None
    source: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    balanced_sampler: StrictBool = False
    num_workers: Annotated[StrictInt, Field(ge=0)] = 2

    def split(self, stage: str) -> str:
        """The dataset split a stage (``train``/``val``/``test``) reads."""
        return {"train": self.train_split, "val": self.val_split,
                "test": self.test_split}.get(stage, stage)


class OptimizerSpec(_Section):
    name: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: Float = 0.01
    momentum: Float = 0.9
    weight_decay: Float = 0.0
    nesterov: StrictBool = False
    betas: tuple[Float, Float] = (0.9, 0.999)


class SchedulerSpec(_Section):
    """Per-epoch learning-rate schedule of the main parameter group.

    ``step``: ×gamma every ``step_size`` epochs; ``exponential``: ×gamma every epoch;
    ``cosine``: cosine to ``min_lr_ratio``×lr over the run; ``none``: constant.
    ``warmup_epochs`` ramps linearly from lr/10 first.
    """

    name: Literal["none", "step", "exponential", "cosine"] = "none"
    step_size: StrictInt = 10
    gamma: Float = 0.1
    min_lr_ratio: Float = 0.0
    warmup_epochs: StrictInt = 0


class LossOptimizerSpec(_Section):
    """A loss's own parameter group (its centres): unset values come from ``optimizer``.

    ``scheduled: false`` keeps the group's lr constant, as DACL's separate SGD does."""

    lr: Float | None = None
    momentum: Float | None = None
    weight_decay: Float | None = None
    scheduled: StrictBool = False

    def group_settings(self) -> dict[str, float]:
        """The torch parameter-group keys this spec sets."""
        return self.model_dump(exclude_none=True, exclude={"scheduled"})


class LossSpec(_Section):
    """One term of the training loss: ``weight * loss``.

    ``name`` is a loss of :data:`ferkit.losses.LOSSES`: ``cross_entropy`` (soft-target CE
    when the data gives distributions) or an auxiliary loss (``affinity``, ``partition``,
    ``center``, ``sparse_center``, ``recalibration``); ``kwargs`` go to its constructor.
    ``optimizer`` gives the loss's own parameters (centres) their own settings, as DACL's
    separate SGD does: ``{lr: 0.5, momentum: 0, weight_decay: 0, scheduled: false}``;
    without it they join the main group (DAN).
    """

    name: str = "cross_entropy"
    weight: Float = 1.0
    kwargs: dict[str, Any] = Field(default_factory=dict)
    optimizer: LossOptimizerSpec | None = None


class TrainerSpec(_Section):
    """Run settings passed to Lightning's ``Trainer`` (``devices``/``strategy`` as-is)."""

    epochs: StrictInt = 10
    batch_size: StrictInt = 64
    seed: StrictInt = 0
    precision: str = "auto"
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    num_nodes: StrictInt = 1
    deterministic: StrictBool = False
    gradient_clip_val: Float | None = None
    accumulate_grad_batches: StrictInt = 1
    # Lightning's meaning: an int is a number of batches, a float a fraction of the epoch, so
    # ``limit_train_batches: 1`` (one batch) must not become 1.0 (the whole epoch).
    limit_train_batches: IntOrFloat = 1.0
    limit_val_batches: IntOrFloat = 1.0
    check_val_every_n_epoch: StrictInt = 1
    log_every_n_steps: StrictInt = 50
    monitor: Literal["val/acc", "val/f1_macro", "val/loss"] = "val/acc"
    detect_nonfinite: StrictBool = True
    progress_bar: StrictBool = True
    # NHWC layout for convolutions: up to 1.4x faster ResNet-18 training on AVX2 CPUs (one
    # probe; another saw no gain: benchmarks/README_training.md); only the memory order differs.
    channels_last: StrictBool = True
    # torch.compile the training forward (the saved model and its checkpoints are unchanged):
    # 2.5x DSAN's fp32 training speed on 2 AVX2 cores, after a compile of minutes
    # (benchmarks/README_training.md), so it pays on long runs only.
    compile: StrictBool = False


class Recipe(_Section):
    """A whole training setup; ``source`` documents where the hyperparameters come from.

    ``faithful_to: owner/repo@commit`` declares that the recipe trains as that reference
    code does (optimiser, schedule, transforms, loss weights); the test suite
    (tests/test_faithful_recipes.py) checks every such recipe against values read from the
    reference's code, and docs/training.md lists each setting with its file:line.
    ``augment`` holds :class:`ferkit.data.transforms.AugmentConfig` options as written
    (``preset: photo`` stays a preset), checked against that class.
    """

    name: str = "custom"
    source: str = ""
    faithful_to: str | None = None
    model: ModelSpec = Field(default_factory=ModelSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    augment: dict[str, Any] = Field(default_factory=dict)
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    losses: list[LossSpec] = Field(default_factory=lambda: [LossSpec()])
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)

    @field_validator("faithful_to")
    @classmethod
    def _github_commit(cls, value: str | None) -> str | None:
        if value is not None and not FAITHFUL_TO.fullmatch(value):
            raise ValueError("must be 'owner/repo@commit' (a GitHub repository and a 7-40 hex "
                             "digit commit, e.g. yaoing/DAN@4253ad9f)")
        return value

    @field_validator("augment")
    @classmethod
    def _augment_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            AugmentConfig.from_dict(dict(value))
        except (FerkitError, TypeError) as exc:
            raise ValueError(str(exc)) from None
        return value

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON values (lists, not tuples): what ``recipe.yaml``, checkpoint
        provenance and Lightning's hyperparameters hold; :func:`recipe_from_dict` reads it
        back to an equal recipe."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


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


def recipe_from_dict(raw: dict[str, Any] | Recipe, *, where: str = "recipe") -> Recipe:
    """Validate a recipe's plain form (YAML, :meth:`Recipe.to_dict`); the first problem
    raises a one-line :class:`FerkitError` naming ``where``, the key and what is wrong."""
    if isinstance(raw, Recipe):
        return raw
    if not isinstance(raw, dict):
        raise FerkitError(f"{where}: a recipe must be a mapping of keys, got {raw!r}")
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        raise FerkitError(_describe(exc, where)) from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``a.b.c=value`` in ``raw``; the value is parsed as YAML (never ``eval``) and
    typed by the field it lands in when the recipe is validated."""
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
    tp: Any = Recipe
    for i, part in enumerate(parts):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if part not in tp.model_fields:
                raise FerkitError(_unknown_key("--set", parts[:i], part, tp))
            tp = _inner(tp.model_fields[part].annotation)
        elif typing.get_origin(tp) is list:
            if not part.isdigit():
                raise FerkitError(f"--set {'.'.join(parts)}: {part!r} must be a list index")
            tp = _inner(typing.get_args(tp)[0])
        else:
            return  # free-form dicts (kwargs, options, augment) take any key


def _inner(tp: Any) -> Any:
    """The section or list type behind ``Optional[...]``/``Annotated[...]``."""
    while True:
        if typing.get_origin(tp) is Annotated:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) in (Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _section_at(loc: tuple[Any, ...]) -> Any:
    """The type at a validation error's location (list indices step into the item type)."""
    tp: Any = Recipe
    for part in loc:
        if isinstance(part, int) and typing.get_origin(tp) is list:
            tp = _inner(typing.get_args(tp)[0])
        elif isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            tp = _inner(tp.model_fields[part].annotation)
        else:
            return None
    return tp


def _unknown_key(where: str, parent: list[str], key: str, section: type[BaseModel]) -> str:
    known = list(section.model_fields)
    full = ".".join([*parent, key])
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"{where}: unknown recipe key {full!r}.{hint} Valid keys here: {', '.join(known)}"


_PLAIN = {
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
}


def _field_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # Union members and validator wrappers appear in locations as type tags.
    return tuple(p for p in loc if isinstance(p, int)
                 or ("[" not in p and p not in ("int", "float", "str")))


def _describe(exc: ValidationError, where: str) -> str:
    """One line for the first error: ``where: key problem, got value``."""
    errors = exc.errors(include_url=False)
    error = errors[0]
    loc = _field_loc(error["loc"])
    if error["type"] == "missing" and loc and isinstance(loc[-1], int):
        loc = loc[:-1]  # a short tuple (betas: [0.9]) names the tuple
        error = {**error, "type": "too_short", "input": None}
    names = [str(p) for p in loc]
    key = ".".join(names) or "recipe"
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        section = _section_at(loc[:-1])
        return _unknown_key(where, names[:-1], names[-1], section)
    if kind == "literal_error":
        choices = ctx["expected"].replace(" or ", ", ")
        return f"{where}: {key} must be one of {choices}, got {value!r}"
    if kind == "int_type" and any(e["type"].startswith("float") and _field_loc(e["loc"]) == loc
                                  for e in errors[1:]):
        problem = "must be a number"  # int or float (DataConfig's mean/std entries)
    elif kind in _PLAIN:
        problem = _PLAIN[kind]
    elif kind == "greater_than_equal":
        problem = f"must be at least {ctx['ge']}"
    elif kind == "less_than_equal":
        problem = f"must be at most {ctx['le']}"
    elif kind == "greater_than":
        problem = f"must be greater than {ctx['gt']}"
    elif kind in ("too_short", "too_long"):
        problem = "has the wrong number of entries"
    else:
        problem = str(error["msg"]).removeprefix("Value error, ")
    if value is None or isinstance(value, dict):  # a whole section says nothing more
        return f"{where}: {key}: {problem}"
    return f"{where}: {key} {problem}, got {value!r}"
