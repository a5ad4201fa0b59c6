"""int8 ONNX: post-training static quantization of a ferkit model, checked against fp32.

:func:`quantize_onnx` exports the model (:func:`ferkit.export.export_onnx`), measures the
activation ranges of every convolution on real face crops (``calibration``: any dataset
:func:`ferkit.data.open_dataset` opens, prepared exactly as inference prepares faces), and
writes a QDQ graph whose convolutions run in int8 (per-channel int8 weights, uint8
activations) while everything else (attention, pooling, the classifier head) stays float32.
The file carries the same metadata as an fp32 export plus ``ferkit.quantization`` (JSON:
scheme, calibration source and size, agreement with fp32), so
``Recognizer.from_pretrained("model.int8.onnx")`` and ``ferkit predict --model`` use it
directly.

Which convolutions
    All but those reading the network input.  On x86 CPUs without VNNI (AVX2 only), ONNX
    Runtime multiplies uint8 activations by int8 weights with 16-bit saturating adds; the
    first layer, fed the full-range image, saturates: quantizing it cost the default model
    12 points of FER2013 PrivateTest on the 2-core AMD machine, keeping it in fp32 costs 0.03
    (benchmarks/README_inference.md).

The check
    Held-out samples of the same source (``check_samples``, disjoint from the calibration
    samples) go through both graphs; the quantized file is written only if their top-1
    predictions agree on at least ``min_agreement`` of them (default 0.97).
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ferkit.atomic import atomic_path
from ferkit.errors import FerkitError

#: metadata key holding the quantization record (JSON)
QUANTIZATION_KEY = "ferkit.quantization"
SCHEME = "int8 static QDQ: per-channel int8 conv weights, uint8 activations (MinMax)"


@dataclass(frozen=True)
class QuantizeReport:
    """What :func:`quantize_onnx` wrote and how it compares with the fp32 graph.

    Attributes:
        path: the int8 ``.onnx`` file.
        architecture: the model's registry name.
        calibration: where the calibration faces came from.
        calibration_samples: faces whose activations set the int8 ranges.
        check_samples: other faces of the same source compared with fp32.
        top1_agreement: fraction of check faces whose top class is the fp32 graph's.
        max_prob_diff: largest ``|p_int8 - p_fp32|`` over check faces and classes.
        mean_prob_diff: mean of ``|p_int8 - p_fp32|``.
        quantized_convs: convolutions running in int8 (of ``total_convs``).
        total_convs: convolutions in the graph.
        size_bytes: size of the int8 file.
        fp32_size_bytes: size of the fp32 export it came from.
        seconds: wall time of export, calibration, quantization and check.
    """

    path: Path
    architecture: str
    calibration: str
    calibration_samples: int
    check_samples: int
    top1_agreement: float
    max_prob_diff: float
    mean_prob_diff: float
    quantized_convs: int
    total_convs: int
    size_bytes: int
    fp32_size_bytes: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out


def quantize_onnx(
    model_or_checkpoint: nn.Module | str | Path,
    path: str | Path,
    calibration: Any,
    *,
    split: str = "train",
    samples: int = 512,
    check_samples: int = 512,
    min_agreement: float = 0.97,
    seed: int = 0,
    exporter: str = "auto",
    format: str | None = None,
) -> QuantizeReport:
    """Write an int8 ONNX file of a ferkit model, calibrated on real faces.

    Args:
        model_or_checkpoint: a ferkit model, or anything :func:`ferkit.load_checkpoint`
            accepts (a checkpoint directory, ``"default"``).
        path: the ``.onnx`` file to write (parent directories are created).
        calibration: a dataset file or folder (opened with :func:`ferkit.data.open_dataset`
            at ``split``; ``format`` as there), a :class:`~ferkit.data.FERDataset`, or an
            array ``(N, C, H, W)`` of inputs already prepared for the model.  Use faces like
            the ones the model will see; the model's training set is the usual choice.
        split: the split of a dataset path to draw faces from.
        samples: faces that set the activation ranges (a few hundred suffice).
        check_samples: further faces on which int8 and fp32 predictions are compared.
        min_agreement: the least top-1 agreement with fp32 to accept; below it
            :class:`FerkitError` is raised and nothing is written.
        seed: which faces are drawn.
        exporter: the fp32 exporter (:func:`ferkit.export.export_onnx`).

    Returns:
        A :class:`QuantizeReport`.

    Examples:
        >>> report = quantize_onnx("default", "ferkit-int8.onnx",
        ...                        "fer2013.csv.gz")  # doctest: +SKIP
        >>> report.top1_agreement > 0.97  # doctest: +SKIP
        True
    """
    start = time.perf_counter()
    if samples < 16:
        raise FerkitError(f"samples must be at least 16 calibration faces, got {samples}")
    if check_samples < 1:
        raise FerkitError(f"check_samples must be at least 1, got {check_samples}")
    if not 0.0 <= min_agreement <= 1.0:
        raise FerkitError(f"min_agreement is a fraction in [0, 1], got {min_agreement}")
    ort, quantization = _import_quantization()
    from ferkit.export import _as_model, export_onnx

    model = _as_model(model_or_checkpoint).eval()
    cfg = model.ferkit_config
    inputs, source = _calibration_inputs(model, calibration, split=split, format=format,
                                         count=samples + check_samples, seed=seed)
    if len(inputs) < samples + 1:
        raise FerkitError(
            f"calibration data {source} has {len(inputs)} faces: quantizing needs "
            f"{samples} to calibrate and at least 1 more to check (lower --calibration-samples "
            "or use a larger set)"
        )
    calib, check = inputs[:samples], inputs[samples:]
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="ferkit-int8-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_onnx(model, fp32, exporter=exporter)
        prepared = Path(tmp) / "prepared.onnx"
        try:  # shape inference + graph fusions, as ONNX Runtime recommends before quantizing
            with _quiet_quantizer():
                quantization.quant_pre_process(str(fp32), str(prepared))
        except Exception:  # optional: quantize the plain export when it cannot be prepared
            prepared = fp32
        convs, total = _convs_to_quantize(prepared)
        if not convs:
            raise FerkitError(f"{cfg.architecture} has no convolution past its input layer to "
                              "quantize; use the fp32 export (`ferkit export` without --int8)")
        quantized = Path(tmp) / "int8.onnx"
        with _quiet_quantizer():
            quantization.quantize_static(
                str(prepared), str(quantized), _Batches(calib),
                quant_format=quantization.QuantFormat.QDQ,
                activation_type=quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8, per_channel=True,
                op_types_to_quantize=["Conv"], nodes_to_quantize=convs,
                calibrate_method=quantization.CalibrationMethod.MinMax,
            )
        agreement, max_diff, mean_diff = _compare(ort, fp32, quantized, check)
        if agreement < min_agreement:
            raise FerkitError(
                f"the int8 graph of {cfg.architecture} agrees with fp32 on only "
                f"{agreement:.1%} of {len(check)} check faces from {source} (needs "
                f"{min_agreement:.0%}); nothing was written. Calibrate on faces like the ones "
                "the model was trained on, or keep the fp32 export"
            )
        record = {"scheme": SCHEME, "calibration": source, "calibration_samples": len(calib),
                  "check_samples": len(check), "top1_agreement": round(agreement, 5),
                  "max_prob_diff": round(max_diff, 5), "quantized_convs": len(convs),
                  "total_convs": total}
        _finish(quantized, path, cfg, record)
        fp32_size = fp32.stat().st_size
    return QuantizeReport(
        path=path, architecture=cfg.architecture, calibration=source,
        calibration_samples=len(calib), check_samples=len(check), top1_agreement=agreement,
        max_prob_diff=max_diff, mean_prob_diff=mean_diff, quantized_convs=len(convs),
        total_convs=total, size_bytes=path.stat().st_size, fp32_size_bytes=fp32_size,
        seconds=time.perf_counter() - start,
    )


def quantization_record(path: str | Path) -> dict[str, Any] | None:
    """The ``ferkit.quantization`` record of an ONNX file, or ``None`` for an fp32 export."""
    import onnx

    proto = onnx.load_model(str(path), load_external_data=False)
    raw = next((p.value for p in proto.metadata_props if p.key == QUANTIZATION_KEY), None)
    return None if raw is None else json.loads(raw)


# --------------------------------------------------------------------------- internals


def _import_quantization():
    try:
        import onnxruntime
        from onnxruntime import quantization
    except ImportError as exc:
        raise FerkitError("int8 export needs onnx and onnxruntime: "
                          "pip install 'ferkit[export]'") from exc
    return onnxruntime, quantization


def _calibration_inputs(model: nn.Module, calibration: Any, *, split: str,
                        format: str | None, count: int, seed: int) -> tuple[np.ndarray, str]:
    """Up to ``count`` distinct faces (shuffled by ``seed``) as float32 model inputs."""
    expected = tuple(model.ferkit_config.data.input_size)
    if isinstance(calibration, np.ndarray):
        inputs = np.asarray(calibration, dtype=np.float32)
        if inputs.ndim != 4 or inputs.shape[1:] != expected:
            raise FerkitError(f"calibration array has shape {inputs.shape}; the model takes "
                              f"(N, {', '.join(map(str, expected))}) prepared inputs")
        order = np.random.default_rng(seed).permutation(len(inputs))[:count]
        return inputs[order], f"array of {len(inputs)} inputs"
    from ferkit.data import open_dataset
    from ferkit.evaluation import prepare_for_model

    if isinstance(calibration, str | Path):
        dataset = open_dataset(calibration, format=format, split=split)
        source = f"{calibration} ({split})"
    else:
        dataset = calibration
        source = getattr(dataset, "name", type(dataset).__name__)
    data = prepare_for_model(dataset, model)
    if len(data) == 0:
        raise FerkitError(f"calibration data {source} has no faces")
    order = np.random.default_rng(seed).permutation(len(data))[:count]
    return np.stack([np.asarray(data[int(i)][0], dtype=np.float32) for i in order]), source


def _convs_to_quantize(path: Path) -> tuple[list[str], int]:
    """Names of the Conv nodes not reading a graph input, and the number of Conv nodes."""
    import onnx

    graph = onnx.load_model(str(path)).graph
    graph_inputs = {i.name for i in graph.input}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    return [n.name for n in convs if n.input[0] not in graph_inputs], len(convs)


class _Batches:
    """ONNX Runtime's calibration reader protocol over prepared inputs, 32 at a time."""

    def __init__(self, inputs: np.ndarray) -> None:
        from ferkit.export import INPUT_NAME

        self._feeds = iter([{INPUT_NAME: inputs[i:i + 32]} for i in range(0, len(inputs), 32)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def _compare(ort, fp32: Path, int8: Path, inputs: np.ndarray) -> tuple[float, float, float]:
    """Top-1 agreement, max and mean ``|p_int8 - p_fp32|`` on ``inputs``."""
    from ferkit.export import INPUT_NAME, OUTPUT_NAME

    def probs(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        logits = np.concatenate([session.run([OUTPUT_NAME], {INPUT_NAME: inputs[i:i + 256]})[0]
                                 for i in range(0, len(inputs), 256)])
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    reference, got = probs(fp32), probs(int8)
    diff = np.abs(got - reference)
    agreement = float(np.mean(got.argmax(axis=1) == reference.argmax(axis=1)))
    return agreement, float(diff.max()), float(diff.mean())


def _finish(quantized: Path, path: Path, cfg, record: dict[str, Any]) -> None:
    """Write ``quantized`` to ``path`` with ferkit's metadata and the quantization record."""
    import onnx

    from ferkit.export import _write_metadata

    proto = onnx.load_model(str(quantized))
    _write_metadata(proto, cfg)
    entry = proto.metadata_props.add()
    entry.key, entry.value = QUANTIZATION_KEY, json.dumps(record)
    proto.doc_string += " (int8 convolutions)"
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))


@contextlib.contextmanager
def _quiet_quantizer():
    """ONNX Runtime's quantizer logs a warning per tensor it leaves in float (the shape and
    index arithmetic of attention): expected here, and noise to a user."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
