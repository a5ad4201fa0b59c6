"""Settings of the HTTP service, from keyword arguments, ``FERKIT_SERVE_*`` variables or the CLI.

Every limit has a safe default so that ``ferkit serve`` on a laptop is not an open door:
loopback only, 8 MiB uploads, 25 megapixels, 30 s per request, no CORS.

Examples:
    >>> s = ServeSettings(max_batch=4)
    >>> s.max_batch, s.host
    (4, '127.0.0.1')
    >>> ServeSettings.from_env({"FERKIT_SERVE_MAX_BATCH": "2", "FERKIT_SERVE_CORS_ORIGINS": "a,b"})
    ... # doctest: +ELLIPSIS
    ServeSettings(..., max_batch=2, ..., cors_origins=('a', 'b'), ...)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ferkit.errors import FerkitError

ENV_PREFIX = "FERKIT_SERVE_"


@dataclass(frozen=True)
class ServeSettings:
    """How the service runs and what it accepts.

    Attributes:
        host, port: where ``ferkit serve`` listens (loopback by default).
        model: weights name (``"default"``) or checkpoint directory, for ``ferkit serve``.
        device, detector, backend: passed to :meth:`ferkit.Recognizer.from_pretrained`.
        max_upload_bytes: largest image file accepted (413 above it); a JSON body may be
            4/3 of it plus a little, for the base64 encoding.
        max_pixels: largest ``width * height`` decoded (413 above it): stops decompression
            bombs, a 50 KB PNG that expands to gigabytes.
        max_batch: most images run through the model in one call.
        batch_wait_ms: how long the first request of a batch waits for others to join.
        max_pending: images queued or running before new requests get 503 (back-pressure).
        request_timeout_s: a request still waiting for the model after this gets 504.
        cors_origins: origins allowed to call the API from a browser; empty = CORS off.
        log_level: level of the ``ferkit.serve`` logger (one line per request).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    model: str = "default"
    device: str = "cpu"
    detector: str = "retinaface"
    backend: str = "auto"
    max_upload_bytes: int = 8 * 1024 * 1024
    max_pixels: int = 25_000_000
    max_batch: int = 8
    batch_wait_ms: float = 5.0
    max_pending: int = 64
    request_timeout_s: float = 30.0
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "info"

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_batch", "max_pending"):
            if getattr(self, name) < 1:
                raise FerkitError(f"serve setting {name} must be at least 1, "
                                  f"got {getattr(self, name)}")
        if self.batch_wait_ms < 0 or self.request_timeout_s <= 0:
            raise FerkitError("serve settings batch_wait_ms must be >= 0 and "
                              "request_timeout_s > 0")

    @property
    def max_body_bytes(self) -> int:
        """Largest request body: a base64 image is 4/3 of its file, plus room for the rest."""
        return self.max_upload_bytes * 4 // 3 + 64 * 1024

    def replace(self, **changes: Any) -> ServeSettings:
        """A copy with ``changes``; ``None`` values are ignored (unset CLI options)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServeSettings:
        """Settings from ``FERKIT_SERVE_<FIELD>`` variables (e.g. ``FERKIT_SERVE_MAX_BATCH``).

        ``FERKIT_SERVE_CORS_ORIGINS`` is a comma-separated list.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            try:
                if f.name == "cors_origins":
                    values[f.name] = tuple(o.strip() for o in raw.split(",") if o.strip())
                elif f.type in ("int", int):
                    values[f.name] = int(raw)
                elif f.type in ("float", float):
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                raise FerkitError(f"environment variable {ENV_PREFIX}{f.name.upper()}={raw!r} "
                                  f"is not a valid {f.type}") from exc
        return cls(**values)
