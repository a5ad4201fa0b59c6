"""Video files in and out: open and read frames (with one-line errors), write annotated copies
with the best codec the file name and this OpenCV build allow."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ferkit.errors import FerkitError, InputError
from ferkit.inference.video._opencv import import_cv2, quiet_opencv, silenced_stderr


def open_video(path: str | Path):
    """An opened ``cv2.VideoCapture`` for ``path``, or :class:`InputError` saying why not."""
    cv2 = import_cv2()
    path = Path(path)
    if not path.exists():
        raise InputError(f"video {path} not found")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"video {path} is empty (0 bytes)")
    capture = cv2.VideoCapture(str(path))
    ok = capture.isOpened()
    if ok:
        ok, _ = capture.read()
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
    if not ok:
        capture.release()
        raise InputError(
            f"cannot read video {path}: OpenCV found no decodable frames (not a video, "
            "truncated, or a codec this OpenCV build lacks). Re-encode it, e.g. "
            f"`ffmpeg -i {path.name} -c:v libx264 fixed.mp4`, or extract frames as images"
        )
    # Re-open rather than trust the seek back to frame 0 (not exact for every container).
    capture.release()
    return cv2.VideoCapture(str(path))


def iter_frames(path: str | Path, *,
                every: int = 1) -> Iterator[tuple[int, float, np.ndarray, bool]]:
    """``(index, time_s, frame_bgr, selected)`` for every frame; ``selected`` marks every
    ``every``-th frame (the ones to analyse)."""
    cv2 = import_cv2()
    if every < 1:
        raise FerkitError(f"--every must be >= 1, got {every}")
    capture = open_video(path)
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            time_s = index / fps if fps > 0 else capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield index, float(time_s), frame, index % every == 0
            index += 1
    finally:
        capture.release()


def video_info(path: str | Path) -> tuple[float, int, tuple[int, int]]:
    """``(fps, frame_count, (width, height))``; frame_count is 0 when the container omits it."""
    cv2 = import_cv2()
    capture = open_video(path)
    try:
        return (float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
                max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))),
                (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
                 int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))))
    finally:
        capture.release()


#: Codecs tried per output extension, best first: (fourcc, description, plays in browsers).
#: The opencv-python wheels carry no H.264 encoder (licensing), but they do carry libvpx, so
#: ``.webm`` (VP8; VP9 is ~2.4x slower to encode for the same use) is the browser-playable
#: choice that always works offline; ``.mp4`` gets H.264 where the OpenCV build has it
#: (a system or conda OpenCV with libx264/openh264), else mp4v, said in the summary's note.
VIDEO_CODECS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    ".webm": (("VP80", "VP8 in WebM", True), ("VP90", "VP9 in WebM", True)),
    ".mp4": (("avc1", "H.264 in MP4", True), ("mp4v", "MPEG-4 Part 2 (mp4v) in MP4", False)),
    ".m4v": (("avc1", "H.264 in M4V", True), ("mp4v", "MPEG-4 Part 2 (mp4v) in M4V", False)),
    ".mov": (("avc1", "H.264 in MOV", True), ("mp4v", "MPEG-4 Part 2 (mp4v) in MOV", False)),
    ".avi": (("MJPG", "Motion JPEG in AVI", False),),
    ".mkv": (("VP80", "VP8 in Matroska", False), ("MJPG", "Motion JPEG in Matroska", False)),
}


@dataclass(frozen=True)
class VideoCodec:
    """The codec a video was written with, and whether browsers play it."""

    fourcc: str
    description: str
    browser_playable: bool
    note: str | None = None


def open_writer(out: str | Path, fps: float, size: tuple[int, int]):
    """``(cv2.VideoWriter, VideoCodec)`` for ``out``: the best codec its extension allows
    in this OpenCV build (:data:`VIDEO_CODECS`)."""
    cv2 = import_cv2()
    out = Path(out)
    choices = VIDEO_CODECS.get(out.suffix.lower())
    if choices is None:
        raise FerkitError(f"--out {out}: use a .webm (plays in browsers), .mp4, .avi, .mov or "
                          ".mkv file name")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FerkitError(f"cannot create {out.parent}: {exc.strerror or exc}") from exc
    for rank, (fourcc, description, playable) in enumerate(choices):
        # Probing an encoder the build lacks makes FFmpeg print errors: ours says it better.
        with quiet_opencv(cv2), silenced_stderr():
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*fourcc), fps or 25.0,
                                     size)
        if writer.isOpened():
            note = None
            if rank > 0:
                wanted = choices[0][1]
                note = (f"this OpenCV build cannot write {wanted}; wrote {description} "
                        "instead" + ("" if playable else ", which most browsers do not play: "
                                     "use a .webm name for a browser-playable video"))
            return writer, VideoCodec(fourcc, description, playable, note)
        writer.release()
    raise FerkitError(f"cannot write video {out} with {' or '.join(c[1] for c in choices)} "
                      "(this OpenCV build lacks the encoder, or the folder is not writable); "
                      "try a .webm or .avi name")
