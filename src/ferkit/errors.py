"""The error type ferkit raises for problems a user can fix.

A :class:`FerkitError` message says what was wrong, where, and what to do.  The CLI prints
it as one line (the traceback only with ``FERKIT_DEBUG=1``); the HTTP service turns it into
a 4xx response.  Anything else escaping is a bug in ferkit.
"""

from __future__ import annotations


class FerkitError(Exception):
    """A problem with the user's input, files or settings, explained in the message."""


class CheckpointError(FerkitError):
    """A checkpoint or state dict that cannot be loaded (missing, corrupt, mismatched)."""


class ConfigError(CheckpointError, ValueError):
    """A model config (``config.json``, ONNX metadata, arguments) with an invalid field."""


class DataError(FerkitError):
    """A dataset file or folder that does not match the expected layout."""


class InputError(FerkitError):
    """An image, video or other input that cannot be used."""


class ColorOrderWarning(UserWarning):
    """A numpy colour image was given without saying its channel order (``color="rgb"`` or
    ``color="bgr"``) and was read as RGB."""
