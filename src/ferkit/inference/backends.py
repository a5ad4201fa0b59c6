"""Classifier backends: run a batch of preprocessed face crops through a model.

A backend takes a float32 ``(N, C, H, W)`` array already normalised by the model's
:class:`~ferkit.config.DataConfig` and returns ``(N, num_classes)`` logits as numpy, divided
by the model's calibration temperature (:mod:`ferkit.calibration`), so their softmax is the
probability every caller reports.  The
Recognizer only talks to this interface, so PyTorch eager and ONNX Runtime are
interchangeable; :func:`create_backend` picks one.

ONNX Runtime from a torch model
    :class:`OnnxBackend` given an ``nn.Module`` exports it once to the cache directory
    (``$FERKIT_CACHE`` or ``~/.cache/ferkit``, sub-folder ``onnx/``), keyed by a SHA-256 of
    the weights and config, so the next process starts from the cached file.  The export is
    verified against PyTorch before it is cached (max abs diff <= 1e-4).

How ``kind="auto"`` chooses
    On CUDA: PyTorch (ONNX Runtime here is the CPU build).  On CPU: ONNX Runtime when it is
    installed, the model exports, and a one-off micro-benchmark (3 timed runs of a batch of
    8 on each backend, medians) finds it faster; the measurement is cached next to the ONNX
    file, so it runs once per set of weights and machine.  Anything failing on the ONNX side
    falls back to PyTorch with a warning: "auto" never breaks inference.  On the 2-core CPU
    we measured ONNX Runtime 1.5-2x faster than PyTorch eager for the baseline ResNet-18,
    and far more when PyTorch's threads compete with other work
    (benchmarks/README_inference.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import statistics
import time
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ferkit import atomic
from ferkit.config import ModelConfig, config_of, find_config
from ferkit.devices import available_cores, no_spinning
from ferkit.errors import FerkitError

BACKEND_KINDS = ("auto", "torch", "onnx")


class ClassifierBackend(Protocol):
    config: ModelConfig
    name: str

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class TorchBackend:
    """PyTorch eager inference (``torch.inference_mode``) on ``device``.

    Runs :class:`ferkit.models.output.LogitsOnly`, the module the ONNX export traces, so both
    backends return the same calibrated logits.
    """

    name = "torch"

    def __init__(self, model: nn.Module, *, device: str | torch.device = "cpu") -> None:
        from ferkit.models.output import LogitsOnly

        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config: ModelConfig = config_of(model, "the PyTorch backend")
        self._logits = LogitsOnly(self.model)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
            return self._logits(x).float().cpu().numpy()


class OnnxBackend:
    """ONNX Runtime inference from an ``.onnx`` file or a ferkit model (exported and cached).

    Args:
        model_or_onnx_path: a model built by :func:`ferkit.create_model` / loaded with
            :func:`ferkit.load_checkpoint`, or an ``.onnx`` file written by
            :func:`ferkit.export.export_onnx` (its metadata supplies the config).
        threads: intra-op threads; default: the CPU cores this process may use.
        cache_dir: where exported models are cached (default :func:`default_cache_dir`).
        device: ``"cpu"``, or ``"cuda"`` when onnxruntime-gpu is installed.

    Examples:
        >>> backend = OnnxBackend("ferkit.onnx")  # doctest: +SKIP
        >>> backend(np.zeros((2, 3, 112, 112), np.float32)).shape  # doctest: +SKIP
        (2, 7)
    """

    name = "onnx"

    def __init__(self, model_or_onnx_path: nn.Module | str | Path, *, threads: int | None = None,
                 cache_dir: str | Path | None = None,
                 device: str | torch.device = "cpu") -> None:
        ort = _import_onnxruntime()
        self.threads = threads or available_cores()
        self._input, self._output = "", ""
        self._providers = ["CPUExecutionProvider"]
        if torch.device(device).type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise FerkitError(
                    "backend='onnx' on CUDA needs onnxruntime-gpu (pip install onnxruntime-gpu); "
                    "or use backend='torch' on CUDA"
                )
            self._providers.insert(0, "CUDAExecutionProvider")
        if not isinstance(model_or_onnx_path, nn.Module):
            self.path = Path(model_or_onnx_path)
            self._open()
            return
        # A cached export that does not load (a truncated or corrupted file, a graph this
        # ONNX Runtime rejects) is evicted and exported again, once.
        for attempt in (1, 2):
            self.path = cached_onnx_export(model_or_onnx_path, cache_dir=cache_dir)
            try:
                self._open()
                return
            except FerkitError as exc:
                evict_cached_export(self.path)
                if attempt == 2:
                    raise FerkitError(f"{exc} (the ONNX export of these weights does not "
                                      "load: it was removed from the cache; use "
                                      "backend='torch')") from None

    def _open(self) -> None:
        """Load ``self.path`` and check that it runs: one zero batch gives finite
        ``(1, num_classes)`` logits."""
        ort = _import_onnxruntime()
        from ferkit.export import INPUT_NAME, OUTPUT_NAME, read_onnx_config

        self.config: ModelConfig = read_onnx_config(self.path)
        options = ort.SessionOptions()
        # One session per process and small batches: all cores inside one op, no inter-op
        # pool competing for them; ORT_ENABLE_ALL fuses conv+bn+relu and picks NCHWc kernels.
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        no_spinning(options)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._input, self._output = INPUT_NAME, OUTPUT_NAME
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=self._providers)
            probe = self(np.zeros((1, *self.config.data.input_size), np.float32))
        except Exception as exc:  # ONNX Runtime raises its own types for bad graphs
            raise FerkitError(f"{self.path} is not a usable ONNX model: "
                              f"{type(exc).__name__}: {_first_line(exc)}") from None
        if probe.shape != (1, self.config.num_classes) or not np.isfinite(probe).all():
            raise FerkitError(f"{self.path} is not a usable ONNX model: a zero input gives "
                              f"{probe.shape} logits (expected (1, {self.config.num_classes}),"
                              " finite)")

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return self.session.run([self._output], {self._input: x})[0]


class OnnxModule(nn.Module):
    """An ONNX file as a (forward-only) PyTorch module, for code that reads
    ``model(x).logits``: evaluation measures an exported or int8 file exactly as it measures
    a checkpoint.

    ``forward`` runs the graph on ONNX Runtime (CPU) and returns a
    :class:`~ferkit.models.output.FEROutput` whose logits are the graph's times the stored
    temperature, i.e. before calibration, as a checkpoint's are.  No gradients, no
    attention maps.
    """

    def __init__(self, onnx_path: str | Path, *, threads: int | None = None) -> None:
        super().__init__()
        self.backend = OnnxBackend(onnx_path, threads=threads)
        self.ferkit_config: ModelConfig = self.backend.config

    def forward(self, x: torch.Tensor):
        from ferkit.models.output import FEROutput

        logits = self.backend(x.detach().float().cpu().numpy())
        return FEROutput(logits=torch.from_numpy(logits * self.ferkit_config.temperature))


def create_backend(model: nn.Module, *, kind: str = "auto",
                   device: str | torch.device = "cpu",
                   cache_dir: str | Path | None = None) -> ClassifierBackend:
    """A backend for ``model``: ``"torch"``, ``"onnx"`` or ``"auto"`` (see module docstring).

    Examples:
        >>> import ferkit
        >>> backend = create_backend(ferkit.create_model("baseline_test"), kind="torch")
        >>> backend(np.zeros((2, 3, 32, 32), np.float32)).shape
        (2, 7)
    """
    if kind not in BACKEND_KINDS:
        raise FerkitError(f"unknown backend {kind!r}; choose one of {', '.join(BACKEND_KINDS)}")
    if kind == "torch":
        return TorchBackend(model, device=device)
    if kind == "onnx":
        return OnnxBackend(model, cache_dir=cache_dir, device=device)
    if torch.device(device).type != "cpu" or not onnxruntime_available():
        return TorchBackend(model, device=device)
    try:
        onnx_backend = OnnxBackend(model, cache_dir=cache_dir)
    except FerkitError as exc:
        warnings.warn(f"ONNX Runtime backend unavailable for {model.ferkit_config.architecture}"
                      f" ({exc}); using PyTorch", stacklevel=2)
        return TorchBackend(model, device=device)
    torch_backend = TorchBackend(model, device=device)
    choice = _measured_choice(torch_backend, onnx_backend)
    return onnx_backend if choice == "onnx" else torch_backend


def default_cache_dir() -> Path:
    """``$FERKIT_CACHE`` or ``~/.cache/ferkit``: where exported ONNX files are kept."""
    root = os.environ.get("FERKIT_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "ferkit"


def weights_hash(model: nn.Module) -> str:
    """SHA-256 (hex) over the model's config and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    cfg = find_config(model)
    if cfg is not None:
        digest.update(cfg.to_json().encode())
    for key, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{value.dtype}|{tuple(value.shape)}".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cached_onnx_export(model: nn.Module, *, cache_dir: str | Path | None = None) -> Path:
    """The verified ``.onnx`` export of ``model``, from the cache or exported now.

    The legacy TorchScript exporter runs first: it is ~5x quicker than the dynamo exporter
    on 2 cores and produces the same graph for ferkit's models; dynamo is the fallback.
    """
    from ferkit.export import export_onnx

    cfg = model.ferkit_config
    folder = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "onnx"
    target = folder / f"{cfg.architecture}-{weights_hash(model)[:20]}.onnx"
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FerkitError(f"cannot create the ONNX cache {folder} ({exc}); set FERKIT_CACHE to "
                          "a writable directory") from exc
    # export_onnx writes through a temporary and renames: a concurrent or interrupted export
    # never leaves a half-written file.
    try:
        export_onnx(model, target, exporter="torchscript")
    except FerkitError:
        export_onnx(model, target, exporter="dynamo")
    return target


def evict_cached_export(path: Path) -> None:
    """Remove a cached ONNX file and its speed records (the next use exports again)."""
    for stale in (path, *path.parent.glob(f"{path.stem}.speed-*.json")):
        with contextlib.suppress(OSError):
            stale.unlink(missing_ok=True)


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_cuda_available() -> bool:
    """Whether ONNX Runtime here can run on a CUDA GPU (onnxruntime-gpu)."""
    try:
        import onnxruntime
    except ImportError:
        return False
    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def measure_backend(backend: ClassifierBackend, *, batch_size: int = 8, repeats: int = 3,
                    warmup: int = 1) -> float:
    """Median seconds per call of ``backend`` on a random batch of ``batch_size``."""
    shape = backend.config.data.input_size
    x = np.random.default_rng(0).standard_normal((batch_size, *shape)).astype(np.float32)
    for _ in range(warmup):
        backend(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _measured_choice(torch_backend: TorchBackend, onnx_backend: OnnxBackend) -> str:
    """"onnx" or "torch", from a cached micro-benchmark for these weights and this machine."""
    record = onnx_backend.path.with_suffix(f".speed-{available_cores()}cores.json")
    try:
        return json.loads(record.read_text())["choice"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        onnx_s = measure_backend(onnx_backend)
    except Exception as exc:  # a graph that loads but fails on a real batch
        evict_cached_export(onnx_backend.path)
        warnings.warn(f"ONNX Runtime failed on {onnx_backend.path} ({type(exc).__name__}: "
                      f"{_first_line(exc)}); removed it from the cache, using PyTorch",
                      stacklevel=3)
        return "torch"
    torch_s = measure_backend(torch_backend)
    choice = "onnx" if onnx_s <= torch_s else "torch"
    result = {"choice": choice, "onnx_s": onnx_s, "torch_s": torch_s, "batch_size": 8,
              "torch": torch.__version__}
    # A read-only cache only costs a re-measurement next time.
    with contextlib.suppress(FerkitError):
        atomic.write_text(record, json.dumps(result, indent=2) + "\n")
    return choice


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise FerkitError(
            "backend='onnx' needs onnxruntime: pip install 'ferkit[export]' (or onnxruntime)"
        ) from exc
    return onnxruntime


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "no detail"
