"""``ferkit webcam``: the camera in a window with tracked, smoothed expressions, and the
checks that say how to fix a missing camera or display."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from ferkit.errors import FerkitError, InputError
from ferkit.inference.video._opencv import import_cv2, quiet_opencv
from ferkit.inference.video.drawing import draw_frame
from ferkit.inference.video.stream import RecognizerLike, StreamAnalyzer
from ferkit.inference.video.tracking import DEFAULT_ALPHA


def check_gui() -> None:
    """Raise :class:`FerkitError` saying how to fix it when no window can be opened."""
    cv2 = import_cv2()
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        raise FerkitError(
            "no display: `ferkit webcam` opens a window but DISPLAY is not set (headless or "
            "SSH session). Run it in a desktop session (or `ssh -X`), or record a clip and "
            "use `ferkit video CLIP.mp4 --out annotated.mp4`"
        )
    gui = _opencv_gui_backend(cv2)
    if gui in ("NONE", ""):
        raise FerkitError(
            "this OpenCV build has no GUI (opencv-python-headless), so it cannot open a "
            "window. Fix: pip uninstall -y opencv-python-headless && pip install "
            "opencv-python; or use `ferkit video FILE --out annotated.mp4`"
        )


def open_camera(index: int = 0):
    """An opened ``cv2.VideoCapture`` for camera ``index`` or an :class:`InputError`."""
    cv2 = import_cv2()
    with quiet_opencv(cv2):  # OpenCV logs its own V4L2/FFMPEG warnings; ours says it better
        capture = cv2.VideoCapture(index)
        ok = capture.isOpened()
        if ok:
            ok, _ = capture.read()
    if not ok:
        capture.release()
        found = sorted(p.name for p in Path("/dev").glob("video*")) if Path("/dev").is_dir() else []
        seen = f"video devices present: {', '.join(found)}" if found else "no /dev/video* devices"
        raise InputError(
            f"no camera at index {index} ({seen}). Connect a camera, close other apps using "
            "it, check permissions (Linux: the 'video' group), or try --camera 1"
        )
    return capture


def run_webcam(recognizer: RecognizerLike, *, camera: int = 0, alpha: float = DEFAULT_ALPHA,
               window: str = "ferkit (q to quit)", max_frames: int | None = None) -> int:
    """Show the camera with tracked, smoothed expressions until ``q``/Esc; frames shown."""
    cv2 = import_cv2()
    capture = open_camera(camera)
    try:
        check_gui()
        analyzer = StreamAnalyzer(recognizer, alpha=alpha)
        shown = 0
        start = _now()
        while max_frames is None or shown < max_frames:
            ok, frame = capture.read()
            if not ok:
                raise InputError(f"camera {camera} stopped delivering frames")
            result = analyzer.process(frame, index=shown, time_s=_now() - start)
            cv2.imshow(window, draw_frame(frame, result.faces))
            shown += 1
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27):
                break
            if cv2.getWindowProperty(window, cv2.WND_PROP_VISIBLE) < 1:
                break  # window closed with the mouse
        return shown
    finally:
        capture.release()
        # A headless build raises here: there was never a window to close.
        with contextlib.suppress(cv2.error):
            cv2.destroyAllWindows()


def _now() -> float:
    import time

    return time.perf_counter()


def _opencv_gui_backend(cv2) -> str:
    try:
        info = cv2.getBuildInformation()
    except Exception:
        return "unknown"
    for line in info.splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper()
    return "NONE"
