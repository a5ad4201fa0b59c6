"""Video: IoU tracking, probability smoothing, video files in and out, webcam errors."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass

import numpy as np
import pytest

from ferkit.errors import FerkitError, InputError

cv2 = pytest.importorskip("cv2")

from ferkit.boxes import box_iou  # noqa: E402
from ferkit.inference import video  # noqa: E402
from ferkit.inference.video import (  # noqa: E402
    IoUTracker,
    ProbabilitySmoother,
    StreamAnalyzer,
    analyze_video,
    webcam,
)

LABELS = ("neutral", "happy", "sad")


@dataclass(frozen=True)
class FakeFace:
    """Stands in for ferkit's FaceResult (same fields the video code reads)."""

    box: tuple[float, float, float, float]
    probs: dict
    detector_score: float | None = 0.9

    def to_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class FakeImageResult:
    faces: tuple
    error: str | None = None


class SquareFinder:
    """A 'recognizer' that finds white squares on a black frame; probs from a schedule."""

    def __init__(self, schedule):
        self.schedule = schedule
        self.calls = 0
        self.batches = []

    def __call__(self, frame, *, color="rgb"):
        assert color == "bgr"
        if isinstance(frame, list):  # like the Recognizer: a list in, a list out
            self.batches.append(len(frame))
            return [self(f, color=color) for f in frame]
        mask = (frame[..., 0] > 128).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        faces = []
        for x, y, w, h, area in stats[1:]:
            if area >= 20:
                faces.append(FakeFace((float(x), float(y), float(x + w), float(y + h)),
                                      dict(zip(LABELS, self.schedule(self.calls), strict=True))))
        self.calls += 1
        faces.sort(key=lambda f: -f.box[0])  # right-to-left: order differs from track order
        return FakeImageResult(tuple(faces))


def _write_video(path, frames, fps=10.0):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def _two_squares(n=12):
    """Square A drifts right from x=10, square B drifts down from y=10, 3 px per frame."""
    frames = []
    for i in range(n):
        frame = np.zeros((96, 128, 3), np.uint8)
        frame[20:44, 10 + 3 * i:34 + 3 * i] = 255
        frame[10 + 3 * i:34 + 3 * i, 90:114] = 255
        frames.append(frame)
    return frames


# ------------------------------------------------------------------------------- tracker


def test_box_iou_values():
    square = [(0, 0, 10, 10)]
    others = [(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30)]
    assert box_iou(square, others)[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])
    assert box_iou([(0, 0, 0, 0)], [(0, 0, 0, 0)]).tolist() == [[0.0]]
    assert box_iou([], others).shape == (0, 3)


def test_old_single_box_iou_still_works_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="ferkit.boxes.box_iou"):
        assert video.box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_tracker_keeps_ids_through_motion_reordering_and_short_gaps():
    tracker = IoUTracker(iou_threshold=0.3, max_age=2)
    assert tracker.update([(0, 0, 10, 10), (50, 50, 60, 60)]) == [1, 2]
    assert tracker.update([(52, 50, 62, 60), (2, 0, 12, 10)]) == [2, 1]
    assert tracker.update([(4, 0, 14, 10)]) == [1]  # face 2 missed once
    assert tracker.update([]) == []  # both missed
    assert tracker.update([(54, 50, 64, 60), (4, 1, 14, 11)]) == [2, 1]  # back within max_age
    assert tracker.live_ids == [1, 2]


def test_tracker_drops_stale_tracks_and_never_reuses_ids():
    tracker = IoUTracker(max_age=1)
    assert tracker.update([(0, 0, 10, 10)]) == [1]
    tracker.update([])
    assert tracker.dropped == [] and tracker.live_ids == [1]
    tracker.update([])
    assert tracker.dropped == [1] and tracker.live_ids == []
    assert tracker.update([(0, 0, 10, 10)]) == [2]
    # A jump with no overlap is a new face, not the old one.
    assert tracker.update([(40, 40, 50, 50)]) == [3]


def test_tracker_greedy_prefers_highest_iou():
    tracker = IoUTracker(iou_threshold=0.1)
    tracker.update([(0, 0, 10, 10), (8, 0, 18, 10)])
    # The box at x=7 overlaps track 2 more (IoU 0.82) than track 1 (0.18).
    assert tracker.update([(7, 0, 17, 10), (0, 0, 10, 10)]) == [2, 1]


def test_tracker_rejects_bad_settings():
    with pytest.raises(FerkitError, match="iou_threshold"):
        IoUTracker(iou_threshold=0)
    with pytest.raises(FerkitError, match="max_age"):
        IoUTracker(max_age=-1)


# ------------------------------------------------------------------------------ smoother


def test_smoother_is_an_exact_ema_per_track():
    smoother = ProbabilitySmoother(alpha=0.25)
    p0, p1, p2 = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    np.testing.assert_array_equal(smoother.update(7, p0), p0)
    np.testing.assert_allclose(smoother.update(7, p1), [0.75, 0.25, 0.0])
    np.testing.assert_allclose(smoother.update(7, p2), [0.5625, 0.1875, 0.25])
    # Another track has its own state; forgetting restarts a track at its next observation.
    np.testing.assert_array_equal(smoother.update(8, p2), p2)
    smoother.forget([7])
    np.testing.assert_array_equal(smoother.update(7, p1), p1)
    np.testing.assert_array_equal(ProbabilitySmoother(alpha=1.0).update(1, p1), p1)
    with pytest.raises(FerkitError, match="alpha"):
        ProbabilitySmoother(alpha=0)


def test_stream_analyzer_smooths_labels_per_track():
    # Raw probabilities flip to "sad" for one frame: the smoothed label stays "happy".
    schedule = [(0.1, 0.8, 0.1), (0.1, 0.8, 0.1), (0.1, 0.2, 0.7), (0.1, 0.8, 0.1)]
    analyzer = StreamAnalyzer(lambda frame, color: None, alpha=0.4)
    labels = []
    for i, probs in enumerate(schedule):
        face = FakeFace((10 + i, 10, 50 + i, 50), dict(zip(LABELS, probs, strict=True)))
        result = analyzer.track([face], index=i, time_s=i / 10)
        labels.append(result.faces[0].label)
        assert result.faces[0].track_id == 1
    assert labels == ["happy", "happy", "happy", "happy"]
    # frame 2: 0.4 * (0.1, 0.2, 0.7) + 0.6 * (0.1, 0.8, 0.1) = (0.1, 0.56, 0.34)
    assert result.faces[0].probs["happy"] == pytest.approx(0.4 * 0.8 + 0.6 * 0.56)
    assert sum(result.faces[0].probs.values()) == pytest.approx(1.0)


# -------------------------------------------------------------------------- video files


def test_analyze_video_tracks_squares_and_writes_video_and_csv(tmp_path):
    src = _write_video(tmp_path / "squares.avi", _two_squares(12))
    finder = SquareFinder(lambda i: (0.2, 0.7, 0.1) if i % 2 == 0 else (0.2, 0.3, 0.5))
    seen = []
    summary = analyze_video(src, finder, out=tmp_path / "out.avi", csv_path=tmp_path / "r.csv",
                            every=2, alpha=0.5, frames_per_batch=4,
                            on_frame=lambda i, r: seen.append(r is not None))
    assert summary.frames_read == 12 and summary.frames_processed == 6
    assert seen == [True, False] * 6
    assert finder.batches == [4, 2]  # analysed frames reach the recognizer 4 at a time
    assert summary.faces == 12 and sorted(summary.tracks) == [1, 2]
    assert all(t["frames"] == 6 for t in summary.tracks.values())

    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 12
    by_track = {}
    for row in rows:
        by_track.setdefault(row["track_id"], []).append(row)
    # Each track follows one square: one moves only right, the other only down.
    xs = {tid: [float(r["x1"]) for r in rs] for tid, rs in by_track.items()}
    ys = {tid: [float(r["y1"]) for r in rs] for tid, rs in by_track.items()}
    moving_right = [tid for tid in xs if xs[tid] == sorted(xs[tid]) and xs[tid][-1] > xs[tid][0]]
    moving_down = [tid for tid in ys if ys[tid] == sorted(ys[tid]) and ys[tid][-1] > ys[tid][0]]
    assert len(moving_right) == 1 and len(moving_down) == 1 and moving_right != moving_down
    assert [r["frame"] for r in by_track["1"]] == ["0", "2", "4", "6", "8", "10"]
    assert float(by_track["1"][1]["time_s"]) == pytest.approx(0.2)
    # Smoothing: raw happy alternates 0.7 / 0.3 (the finder's schedule per processed frame);
    # alpha 0.5 starting from the first observation gives exactly these values.
    happy = [float(r["p_happy"]) for r in by_track["1"]]
    assert happy == pytest.approx([0.7, 0.5, 0.6, 0.45, 0.575, 0.4375], abs=1e-5)
    # Raw top class flips to "sad" (0.5) every other frame; the smoothed label never does.
    assert [float(r["raw_sad"]) for r in by_track["1"]] == [0.1, 0.5, 0.1, 0.5, 0.1, 0.5]
    assert [r["label"] for r in by_track["1"]] == ["happy"] * 6
    assert [float(r["raw_happy"]) for r in by_track["1"]] == [0.7, 0.3, 0.7, 0.3, 0.7, 0.3]

    out = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert int(out.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    ok, first = out.read()
    out.release()
    assert ok and first.shape == (96, 128, 3)
    # The annotation (coloured box + label) changed pixels around square A.
    original = _two_squares(1)[0]
    assert np.abs(first.astype(int) - original.astype(int)).max() > 100


def test_unreadable_videos_say_what_is_wrong(tmp_path):
    with pytest.raises(InputError, match="not found"):
        analyze_video(tmp_path / "missing.mp4", SquareFinder(lambda i: (1, 0, 0)))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty \(0 bytes\)"):
        video.open_video(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video at all" * 100)
    with pytest.raises(InputError, match="cannot read video .*junk.mp4.*ffmpeg"):
        video.open_video(junk)
    with pytest.raises(InputError, match="is a directory"):
        video.open_video(tmp_path)
    src = _write_video(tmp_path / "ok.avi", _two_squares(2))
    with pytest.raises(FerkitError, match="use a .webm"):
        analyze_video(src, SquareFinder(lambda i: (1, 0, 0)), out=tmp_path / "x.gif")


def test_webcam_without_camera_or_display_says_how_to_fix(monkeypatch, capsys):
    from ferkit.cli import main

    with pytest.raises(InputError, match="no camera at index 7"):
        video.open_camera(7)
    # The CLI checks the camera before loading any model: one line, exit status 2.
    assert main(["webcam", "--camera", "7", "--model", "/nonexistent"]) == 2
    assert "error: no camera at index 7" in capsys.readouterr().err
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(webcam.sys, "platform", "linux")
    with pytest.raises(FerkitError, match="no display.*DISPLAY is not set"):
        video.check_gui()
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(webcam, "_opencv_gui_backend", lambda cv2: "NONE")
    with pytest.raises(FerkitError, match="no GUI.*pip install opencv-python"):
        video.check_gui()


# ------------------------------------------------- real Recognizer on a synthetic face clip

FACE_PHOTO = ("face_photos", "dlib", "examples", "faces", "2008_001322.jpg")  # 3 faces
SHIFT_PX, N_FRAMES, WINDOW = 6, 6, 440


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory):
    """A 6-frame clip panning across a 3-face photo: faces move 6 px left per frame."""
    from conftest import shared_path

    photo = cv2.imread(str(shared_path(*FACE_PHOTO)))
    frames = [np.ascontiguousarray(photo[:, SHIFT_PX * i:SHIFT_PX * i + WINDOW])
              for i in range(N_FRAMES)]
    return _write_video(tmp_path_factory.mktemp("clip") / "faces.avi", frames, fps=5.0)


def test_real_recognizer_keeps_track_ids_on_moving_faces(face_clip, tiny_checkpoint, tmp_path):
    import ferkit

    rec = ferkit.Recognizer.from_pretrained(tiny_checkpoint, backend="torch")
    results = []
    summary = analyze_video(face_clip, rec, csv_path=tmp_path / "faces.csv",
                            on_frame=lambda i, r: results.append(r))
    assert summary.frames_processed == N_FRAMES and summary.fps == pytest.approx(5.0)
    assert [len(r.faces) for r in results] == [3] * N_FRAMES
    assert sorted(summary.tracks) == [1, 2, 3]
    assert all(t["frames"] == N_FRAMES for t in summary.tracks.values())
    # Each track follows one face (the faces are >100 px apart): its box moves left with the
    # pan, 6 px per frame, within the detector's jitter on MJPEG frames (~5 px).
    for track_id in (1, 2, 3):
        xs = np.array([next(f.face.box[0] for f in r.faces if f.track_id == track_id)
                       for r in results])
        expected = xs[0] - SHIFT_PX * np.arange(N_FRAMES)
        assert np.all(np.abs(xs - expected) <= 6), (track_id, xs)
    rows = list(csv.DictReader((tmp_path / "faces.csv").open()))
    assert len(rows) == 3 * N_FRAMES
    labels = rec.config.label_names
    for row in rows:
        assert sum(float(row[f"p_{k}"]) for k in labels) == pytest.approx(1.0, abs=1e-4)
        assert row["label"] == max(labels, key=lambda k: float(row[f"p_{k}"]))


def test_cli_video_writes_annotated_video_csv_and_json(face_clip, tiny_checkpoint, tmp_path,
                                                       capsys):
    import json

    from ferkit.cli import main

    out, table = tmp_path / "annotated.mp4", tmp_path / "r.csv"
    code = main(["video", str(face_clip), "--out", str(out), "--csv", str(table), "--every",
                 "2", "--model", str(tiny_checkpoint), "--backend", "torch", "--format", "json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames_read"] == N_FRAMES and summary["frames_processed"] == 3
    assert sorted(summary["tracks"]) == ["1", "2", "3"]
    written = cv2.VideoCapture(str(out))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == N_FRAMES
    written.release()
    assert len(list(csv.DictReader(table.open()))) == 9

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    assert main(["video", str(junk), "--model", str(tiny_checkpoint)]) == 2
    assert "cannot read video" in capsys.readouterr().err


def test_webcam_loop_shows_tracked_frames_until_q(monkeypatch):
    """run_webcam with a fake camera and window: frames flow through tracking to imshow."""
    frames = iter(_two_squares(5))

    class FakeCamera:
        released = False

        def read(self):
            return True, next(frames)

        def release(self):
            self.released = True

    camera = FakeCamera()
    shown, keys = [], iter([-1, -1, ord("q")])
    monkeypatch.setattr(webcam, "open_camera", lambda index: camera)
    monkeypatch.setattr(webcam, "check_gui", lambda: None)
    monkeypatch.setattr(cv2, "imshow", lambda name, image: shown.append(image))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: next(keys))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda name, prop: 1.0)
    finder = SquareFinder(lambda i: (0.1, 0.8, 0.1))
    assert video.run_webcam(finder, camera=0) == 3  # stopped by "q" on the third frame
    assert len(shown) == 3 and camera.released and finder.calls == 3
    # Each shown frame carries the annotation boxes drawn over the white squares.
    assert all(np.abs(s.astype(int) - f.astype(int)).max() > 100
               for s, f in zip(shown, _two_squares(3), strict=True))
