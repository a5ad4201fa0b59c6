"""Settings of the HTTP service, from keyword arguments, ``FERKIT_SERVE_*`` variables or the CLI.

Every limit has a safe default so that ``ferkit serve`` on a laptop is not an open door:
loopback only (and only loopback ``Host`` names), 8 MiB uploads, 25 megapixels, 10 s for a
request's headers, 60 s for its body, 30 s for decoding and the model, 1,000 connections,
no CORS.

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
#: names and addresses of this machine's loopback interface, as a Host header spells them
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


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
        request_timeout_s: deadline for decoding the image and running the model, from the
            moment the body has arrived; past it the request gets 504.
        max_pending_explain: ``/v1/explain`` requests queued or running before new ones get
            503 + ``Retry-After`` (explanations are heavy: they must not crowd out predict).
        header_timeout_s: a connection must deliver a complete request head within this
            after it opens (or after its previous response); else it is closed (slowloris).
        body_timeout_s: the whole request body must arrive within this (408 otherwise),
            however it is chunked.
        keep_alive_s: an idle keep-alive connection is closed after this.
        max_connections: open connections at most; at the cap, a new connection displaces
            the one that has waited longest without sending a request, or is refused.
            ``ferkit serve`` keeps it below the process's open-file limit.
        max_buffered_bytes: request bodies held in memory at once, over all requests;
            above it new bodies get 503 (uploads never go to temporary files).
        max_decode_bytes: memory for decoded images at once, estimated from each image's
            header before decoding (size and bit depth); requests wait for room, within
            their deadline.
        allowed_hosts: ``Host`` header values accepted (``*.example.com`` matches
            subdomains, ``*`` anything); empty = loopback names when ``host`` is a loopback
            address, anything otherwise.
        cors_origins: origins allowed to call the API from a browser; empty = CORS off.
        log_level: level of the ``ferkit.serve`` logger (one line per request).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    model: str = "default"
    device: str = "auto"
    detector: str = "retinaface"
    backend: str = "auto"
    max_upload_bytes: int = 8 * 1024 * 1024
    max_pixels: int = 25_000_000
    max_batch: int = 8
    batch_wait_ms: float = 5.0
    max_pending: int = 64
    request_timeout_s: float = 30.0
    max_pending_explain: int = 4
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    keep_alive_s: float = 5.0
    max_connections: int = 1000
    max_buffered_bytes: int = 256 * 1024 * 1024
    max_decode_bytes: int = 1024 * 1024 * 1024
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "info"

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_batch", "max_pending",
                     "max_pending_explain", "max_connections", "max_buffered_bytes",
                     "max_decode_bytes"):
            if getattr(self, name) < 1:
                raise FerkitError(f"serve setting {name} must be at least 1, "
                                  f"got {getattr(self, name)}")
        for name in ("request_timeout_s", "header_timeout_s", "body_timeout_s",
                     "keep_alive_s"):
            if not getattr(self, name) > 0:
                raise FerkitError(f"serve setting {name} must be more than 0 seconds, "
                                  f"got {getattr(self, name)}")
        if self.batch_wait_ms < 0:
            raise FerkitError(f"serve setting batch_wait_ms must be >= 0, "
                              f"got {self.batch_wait_ms}")
        if self.max_buffered_bytes < self.max_body_bytes:
            raise FerkitError(f"serve setting max_buffered_bytes ({self.max_buffered_bytes}) "
                              f"must hold at least one whole request body "
                              f"({self.max_body_bytes} bytes for max_upload_bytes="
                              f"{self.max_upload_bytes}); raise it too "
                              f"({ENV_PREFIX}MAX_BUFFERED_BYTES)")

    @property
    def effective_allowed_hosts(self) -> tuple[str, ...]:
        """``allowed_hosts``, or its default for ``host`` (loopback names on loopback)."""
        if self.allowed_hosts:
            return self.allowed_hosts
        if self.host in LOOPBACK_HOSTS:
            return LOOPBACK_HOSTS
        return ("*",)

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

        ``FERKIT_SERVE_CORS_ORIGINS`` and ``FERKIT_SERVE_ALLOWED_HOSTS`` are comma-separated
        lists.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            try:
                if f.name in ("cors_origins", "allowed_hosts"):
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
