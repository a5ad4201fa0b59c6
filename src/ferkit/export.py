"""ONNX export: a self-describing ``.onnx`` file, verified against PyTorch.

The exported graph takes the normalised face batch ``input`` ``(N, C, H, W)`` float32 (the
output of :func:`ferkit.data.transforms.eval_transform`) and returns ``logits``
``(N, num_classes)``, already divided by the model's calibration temperature
(``softmax(logits)`` is the calibrated probability; ``ferkit.temperature`` records the
value); the batch axis is dynamic.  Everything else a user of the file needs
travels in the ONNX model's ``metadata_props`` (string key/values), so ONNX Runtime users
need neither ferkit nor the checkpoint:

=========================  ============================================================
key                        value
=========================  ============================================================
``ferkit.architecture``    registry name, e.g. ``baseline``
``ferkit.label_names``     JSON list, class names in output order
``ferkit.input_size``      JSON ``[C, H, W]``
``ferkit.mean``            JSON list, per-channel mean (pixels scaled to [0, 1] first)
``ferkit.std``             JSON list, per-channel std
``ferkit.interpolation``   resize filter for the face crop
``ferkit.alignment``       ``five_point`` or ``box`` (how the face crop was made)
``ferkit.face_margin``     context around the face, fraction of the face size
``ferkit.crop_pct``        below 1: resize the crop to ``input_size / crop_pct`` (floored),
                           then cut out the centre ``input_size`` (DACL: 0.875)
``ferkit.temperature``     calibration temperature already applied inside the graph
``ferkit.config``          the full :class:`~ferkit.config.ModelConfig` JSON (round trip)
=========================  ============================================================

Two exporters exist in torch 2.14: the ``torch.export``-based one (``dynamo=True``, torch's
default) and the legacy TorchScript tracer.  ``exporter="auto"`` uses the first and falls
back to the second only when the first fails (the report says which one ran).  The legacy
tracer needs opset 20 for ``affine_grid`` (Deep-Emotion's STN); the dynamo exporter handles
it at its default opset 18.
"""

from __future__ import annotations

import io
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ferkit.atomic import atomic_path
from ferkit.config import ModelConfig, config_of
from ferkit.errors import CheckpointError, FerkitError
from ferkit.models.output import LogitsOnly

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
METADATA_PREFIX = "ferkit."
#: default limit on ``max |onnx - torch|`` over the verification batches, for logits of
#: magnitude <= 1; larger logits get ``tolerance * max |logit|`` (fp32 rounding grows with
#: magnitude: a randomly initialised DAN has logits ~1e3 and differs by ~4e-3, i.e. 4e-6
#: relative, from either exporter)
DEFAULT_TOLERANCE = 1e-4
#: the opset the legacy exporter uses when none is asked for (affine_grid needs 20)
_TORCHSCRIPT_DEFAULT_OPSET = 20


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` wrote and how closely it matches PyTorch.

    Attributes:
        path: the ``.onnx`` file (weights embedded, no side files).
        architecture: the model's registry name.
        exporter: ``"dynamo"`` or ``"torchscript"``: the exporter that produced the file.
        opset: the ONNX default-domain opset of the file.
        input_shape: ``(C, H, W)`` of one input; the batch axis is dynamic unless
            ``dynamic_batch=False``.
        dynamic_batch: whether any batch size is accepted.
        max_abs_diff: largest ``|onnx - torch|`` over the verification batches (``None``
            when ``verify=False``).
        logit_scale: largest ``|torch logit|`` seen in verification (the diff is judged
            against ``tolerance * max(1, logit_scale)``).
        verified_batch_sizes: batch sizes compared against PyTorch.
        seconds: wall time of export plus verification.
        size_bytes: file size.
    """

    path: Path
    architecture: str
    exporter: str
    opset: int
    input_shape: tuple[int, int, int]
    dynamic_batch: bool
    max_abs_diff: float | None
    logit_scale: float | None
    verified_batch_sizes: tuple[int, ...]
    seconds: float
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


def export_onnx(
    model_or_checkpoint: nn.Module | str | Path,
    path: str | Path,
    *,
    opset: int | None = None,
    dynamic_batch: bool = True,
    verify: bool = True,
    tolerance: float = DEFAULT_TOLERANCE,
    exporter: str = "auto",
) -> ExportReport:
    """Export a ferkit model (or checkpoint) to ``path`` and check it against PyTorch.

    Args:
        model_or_checkpoint: a model built by :func:`ferkit.create_model`, or anything
            :func:`ferkit.load_checkpoint` accepts (directory, ``"default"``).
        path: the ``.onnx`` file to write (parent directories are created).
        opset: ONNX opset; ``None`` takes the exporter's default (18 for dynamo).
        dynamic_batch: accept any batch size (otherwise batch 1 only).
        verify: run ONNX Runtime and PyTorch on the same random inputs (batch 1 and 3)
            and raise :class:`FerkitError` (and delete the file) if they differ by more
            than ``tolerance * max(1, max |logit|)``.
        tolerance: see ``verify`` (:data:`DEFAULT_TOLERANCE`).
        exporter: ``"auto"`` (dynamo, falling back to TorchScript), ``"dynamo"`` or
            ``"torchscript"``.

    Returns:
        An :class:`ExportReport`.

    Examples:
        >>> import ferkit, tempfile, os
        >>> model = ferkit.create_model("baseline_test")
        >>> out = os.path.join(tempfile.mkdtemp(), "m.onnx")
        >>> report = export_onnx(model, out)  # doctest: +SKIP
        >>> report.max_abs_diff < 1e-4  # doctest: +SKIP
        True
    """
    start = time.perf_counter()
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise FerkitError(f"exporter must be 'auto', 'dynamo' or 'torchscript', not {exporter!r}")
    model = _as_model(model_or_checkpoint)
    # Export runs on CPU in eval mode; the caller's model goes back where and how it was.
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    try:
        return _export(model, Path(path), opset=opset, dynamic_batch=dynamic_batch,
                       verify=verify, tolerance=tolerance, exporter=exporter, start=start)
    finally:
        model.to(device).train(was_training)


def _export(model: nn.Module, path: Path, *, opset: int | None, dynamic_batch: bool,
            verify: bool, tolerance: float, exporter: str, start: float) -> ExportReport:
    cfg: ModelConfig = model.ferkit_config
    wrapped = LogitsOnly(model).eval().cpu()
    channels, height, width = cfg.data.input_size
    # Batch 2 as the example: torch.export specialises a dimension traced at size 1.
    example = torch.randn(2 if dynamic_batch else 1, channels, height, width,
                          generator=torch.Generator().manual_seed(0))

    errors: list[str] = []
    proto = None
    used = ""
    order = ["dynamo", "torchscript"] if exporter == "auto" else [exporter]
    for name in order:
        try:
            proto = _EXPORTERS[name](wrapped, example, opset, dynamic_batch)
            used = name
            break
        except Exception as exc:  # exporters raise many types; we report them all at once
            errors.append(f"{name}: {type(exc).__name__}: {_first_line(exc)}")
    if proto is None:
        hint = " (grid_sample/affine_grid need opset >= 16 with dynamo, 20 with torchscript)"
        raise FerkitError(
            f"cannot export {cfg.architecture} to ONNX{hint}: " + " | ".join(errors)
        )

    _write_metadata(proto, cfg)
    import onnx

    max_diff: float | None = None
    scale: float | None = None
    batches: tuple[int, ...] = ()
    # Verified before it is renamed into place: a bad export never replaces a good file.
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))
        if verify:
            batches = (1, 3) if dynamic_batch else (1,)
            max_diff, scale = verify_onnx(wrapped, tmp, batch_sizes=batches)
            allowed = tolerance * max(1.0, scale)
            if not max_diff <= allowed:
                raise FerkitError(
                    f"ONNX export of {cfg.architecture} ({used}) differs from PyTorch by "
                    f"{max_diff:.3g} (> {allowed:.3g} = tolerance {tolerance:g} x max(1, max "
                    f"|logit| {scale:.3g})); nothing was written. Try another exporter "
                    "(exporter='torchscript'/'dynamo') or opset"
                )
    return ExportReport(
        path=path,
        architecture=cfg.architecture,
        exporter=used,
        opset=_default_opset(proto),
        input_shape=(channels, height, width),
        dynamic_batch=dynamic_batch,
        max_abs_diff=max_diff,
        logit_scale=scale,
        verified_batch_sizes=batches,
        seconds=time.perf_counter() - start,
        size_bytes=path.stat().st_size,
    )


def verify_onnx(model: nn.Module, path: str | Path, *,
                batch_sizes: tuple[int, ...] = (1, 3), seed: int = 0) -> tuple[float, float]:
    """``(max |onnx - torch|, max |torch|)`` of the logits on seeded random inputs.

    ``model`` is a ferkit model or a :class:`LogitsOnly` wrapper around one.
    """
    import onnxruntime as ort

    wrapped = model if isinstance(model, LogitsOnly) else LogitsOnly(model)
    wrapped.eval()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = wrapped.model.ferkit_config.data.input_size
    generator = torch.Generator().manual_seed(seed)
    worst = scale = 0.0
    for batch in batch_sizes:
        x = torch.randn(batch, *shape, generator=generator)
        with torch.inference_mode():
            expected = wrapped(x).float().numpy()
        got = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        if got.shape != expected.shape:
            raise FerkitError(f"{path}: ONNX output shape {got.shape} != PyTorch "
                              f"{expected.shape} at batch {batch}")
        worst = max(worst, float(np.max(np.abs(got - expected))))
        scale = max(scale, float(np.max(np.abs(expected))))
    return worst, scale


def read_onnx_config(path: str | Path) -> ModelConfig:
    """The :class:`ModelConfig` stored in an ``.onnx`` file written by :func:`export_onnx`.

    Examples:
        >>> cfg = read_onnx_config("model.onnx")  # doctest: +SKIP
        >>> cfg.label_names[:2]  # doctest: +SKIP
        ('neutral', 'happy')
    """
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FerkitError(f"ONNX file {path} not found")
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:
        raise FerkitError(f"{path} is not a readable ONNX model: {_first_line(exc)}") from exc
    meta = {p.key: p.value for p in proto.metadata_props}
    raw = meta.get(METADATA_PREFIX + "config")
    if raw is None:
        raise FerkitError(
            f"{path} has no ferkit metadata (key 'ferkit.config'); export it with "
            "`ferkit export CHECKPOINT --onnx OUT.onnx` so labels and preprocessing travel with it"
        )
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise CheckpointError(f"{path} metadata: 'ferkit.config' is not valid JSON ({exc}); "
                              "export the model again with `ferkit export`") from None
    return ModelConfig.from_dict(parsed, source=f"{path} metadata")


def onnx_metadata(cfg: ModelConfig) -> dict[str, str]:
    """The ``metadata_props`` written for ``cfg`` (see the module docstring)."""
    data = cfg.data
    values: dict[str, Any] = {
        "architecture": cfg.architecture,
        "label_names": list(cfg.label_names),
        "input_size": list(data.input_size),
        "mean": list(data.mean),
        "std": list(data.std),
        "interpolation": data.interpolation,
        "alignment": data.alignment,
        "face_margin": data.face_margin,
        "crop_pct": data.crop_pct,
        "temperature": cfg.temperature,
    }
    out = {METADATA_PREFIX + k: v if isinstance(v, str) else json.dumps(v)
           for k, v in values.items()}
    out[METADATA_PREFIX + "config"] = json.dumps(cfg.to_dict())
    return out


# --------------------------------------------------------------------------- internals


def _as_model(model_or_checkpoint: nn.Module | str | Path) -> nn.Module:
    if isinstance(model_or_checkpoint, nn.Module):
        config_of(model_or_checkpoint, "export_onnx")
        return model_or_checkpoint
    from ferkit.weights import load_checkpoint

    return load_checkpoint(model_or_checkpoint)


def _export_dynamo(model: nn.Module, example: Tensor, opset: int | None, dynamic: bool):
    from torch.export import Dim

    shapes = ({0: Dim("batch", min=1, max=4096)},) if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (example,), None, dynamo=True, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=shapes, verbose=False,
        )
    return program.model_proto


def _export_torchscript(model: nn.Module, example: Tensor, opset: int | None, dynamic: bool):
    import onnx

    buffer = io.BytesIO()
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example,), buffer, dynamo=False,
            opset_version=opset or _TORCHSCRIPT_DEFAULT_OPSET,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=axes,
        )
    return onnx.load_model_from_string(buffer.getvalue())


_EXPORTERS = {"dynamo": _export_dynamo, "torchscript": _export_torchscript}


def _write_metadata(proto, cfg: ModelConfig) -> None:
    entries = onnx_metadata(cfg)
    keep = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    shape = ",".join(map(str, cfg.data.input_size))
    proto.doc_string = (f"ferkit {cfg.architecture}: {INPUT_NAME} (N,{shape}) normalised face "
                        f"crops -> {OUTPUT_NAME} (N,{cfg.num_classes}) over "
                        f"{', '.join(cfg.label_names)}")


def _default_opset(proto) -> int:
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), -1)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "no detail"
