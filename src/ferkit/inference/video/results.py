"""What video analysis returns: tracked faces per frame and the summary of a whole video."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferkit.inference.results import FaceResult


@dataclass(frozen=True)
class TrackedFace:
    """One face in one frame: the per-frame result plus its track and smoothed probabilities.

    ``probs``/``label``/``score`` are the smoothed values; ``face.probs`` the raw ones.
    """

    track_id: int
    face: FaceResult
    probs: dict[str, float]
    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"track_id": self.track_id, "label": self.label, "score": self.score,
                "probs": dict(self.probs), "raw": self.face.to_dict()}


@dataclass(frozen=True)
class FrameResult:
    """The faces of one processed frame; ``time_s`` is the frame's timestamp in the video."""

    index: int
    time_s: float
    faces: tuple[TrackedFace, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.index, "time_s": self.time_s,
                "faces": [f.to_dict() for f in self.faces]}


@dataclass
class VideoSummary:
    """What :func:`analyze_video` did: counts, per-track summary and the files written."""

    source: str
    fps: float
    frames_read: int = 0
    frames_processed: int = 0
    faces: int = 0
    #: track id -> {"first_frame", "last_frame", "frames", "label" (most frequent smoothed)}
    tracks: dict[int, dict[str, Any]] = field(default_factory=dict)
    out_path: str | None = None
    csv_path: str | None = None
    #: how the annotated video was encoded (e.g. "VP8 in WebM"), and why, when it is not
    #: the codec its file name asked for
    codec: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "fps": self.fps, "frames_read": self.frames_read,
                "frames_processed": self.frames_processed, "faces": self.faces,
                "tracks": {str(k): v for k, v in self.tracks.items()},
                "out_path": self.out_path, "csv_path": self.csv_path, "codec": self.codec,
                "note": self.note}
