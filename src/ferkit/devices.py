"""Where models run: ``"auto"`` (a CUDA GPU when there is one, else the CPU) or a named device,
and how many CPU cores a session may use (:func:`available_cores`, :func:`no_spinning`).

Every function and command that takes a ``device`` passes it through :func:`resolve_device`,
so ``"auto"`` means the same everywhere and a device this machine does not have fails with
one line saying which devices it does have, instead of a torch traceback from the first
tensor moved there.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ferkit.errors import FerkitError

if TYPE_CHECKING:
    import torch

#: what a device may be given as (``cuda:N`` for the N-th GPU)
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
DEVICE_HELP = "auto (a CUDA GPU when there is one, else the CPU), cpu, cuda, cuda:1 or mps"


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """The :class:`torch.device` for ``device``, checked to exist on this machine.

    ``"auto"`` (or ``None``) is ``cuda`` when torch sees a CUDA GPU, else ``cpu``.  Apple's
    ``mps`` is used only when asked for by name.

    Raises:
        FerkitError: an unknown device name, or one this machine does not have.
    """
    import torch

    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, str):
        text = device.strip().lower()
        try:
            parsed = torch.device(text)
        except (RuntimeError, ValueError):
            parsed = None
        if parsed is None or parsed.type not in ("cpu", "cuda", "mps"):
            raise FerkitError(f"unknown device {device!r}: use {_choices()}")
    else:
        parsed = device
    if parsed.type == "cuda":
        _check_cuda(parsed, str(device))
    elif parsed.type == "mps" and not _mps_available():
        raise FerkitError(f"device {str(device)!r} is not available: this machine has no Apple "
                          "GPU (MPS) that torch can use; use 'cpu' or 'auto'")
    return parsed


def _check_cuda(device: torch.device, name: str) -> None:
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        build = (f"built with CUDA {torch.version.cuda}" if torch.version.cuda
                 else "a CPU-only build")
        raise FerkitError(
            f"device {name!r} is not available: torch {torch.__version__} ({build}) sees no "
            "CUDA GPU; use 'cpu', or 'auto' to take a GPU only when there is one"
        )
    if device.index is not None and device.index >= count:
        have = ", ".join(f"cuda:{i}" for i in range(count))
        raise FerkitError(f"device {name!r} does not exist: this machine has {count} CUDA "
                          f"GPU{'s' * (count != 1)} ({have})")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _choices() -> str:
    return ", ".join(DEVICE_CHOICES[:-1]) + f" or {DEVICE_CHOICES[-1]}"


def available_cores() -> int:
    """CPU cores this process may run on (respects taskset / container affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def no_spinning(options) -> None:
    """Make an ONNX Runtime session's idle worker threads sleep instead of spin.

    ORT's workers busy-wait between ops and after each run.  The Recognizer has two sessions
    (detector and classifier) taking turns, and laptops and shared servers run other work:
    a spinning pool then steals the cores the active one needs.  Measured on the 2-core
    benchmark machine under load (benchmarks/README_inference.md): ResNet-18 at batch 1,
    2 threads, 33 faces/s spinning vs 71 not spinning (1 thread: 70).
    """
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
