"""OpenCV, imported on first use with a one-line error, and kept quiet where ferkit's own
messages say it better."""

from __future__ import annotations

import contextlib
import os
import sys

from ferkit.errors import FerkitError


@contextlib.contextmanager
def quiet_opencv(cv2):
    """Only errors from OpenCV's own logger inside the block."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def import_cv2():
    """The ``cv2`` module, or a :class:`FerkitError` saying which package to install."""
    try:
        import cv2
    except ImportError as exc:
        raise FerkitError(
            "video needs OpenCV: pip install 'ferkit[faces]' (opencv-python-headless), or "
            "opencv-python for `ferkit webcam`"
        ) from exc
    return cv2


@contextlib.contextmanager
def silenced_stderr():
    """Mute the process's stderr (file descriptor 2) for the block: FFmpeg writes there
    directly, beyond Python's and OpenCV's loggers."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
