"""Atomic writes: a failed write leaves the old file (or none), and OS errors are one line."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

import ferkit
from ferkit import atomic
from ferkit.cli import main
from ferkit.errors import FerkitError
from test_data_fer2013 import write_csv


def _disk_full_after(nbytes: int):
    """An OSError(ENOSPC) once ``nbytes`` were written: what a full disk does mid-file."""
    def fail(path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"\0" * nbytes)
        raise OSError(errno.ENOSPC, "No space left on device")
    return fail


def _one_line_error(capsys, args, *needles) -> str:
    assert main(list(map(str, args))) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_data_cache_on_a_full_disk_leaves_no_half_npz(tmp_path, capsys, monkeypatch):
    csv = write_csv(tmp_path / "fer2013.csv")
    out = tmp_path / "cache" / "fer.npz"
    assert main(["data", "cache", str(csv), str(out)]) == 0
    good = out.read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(np, "savez", _disk_full_after(1000))
    _one_line_error(capsys, ["data", "cache", csv, out], f"cannot write {out}",
                    "No space left on device", "free some disk space")
    assert out.read_bytes() == good  # the previous cache is untouched ...
    assert [p.name for p in out.parent.iterdir()] == ["fer.npz"]  # ... and no temporary left
    out.unlink()
    _one_line_error(capsys, ["data", "cache", csv, out], "No space left on device")
    assert not list(out.parent.iterdir())  # nothing at all, rather than half a file
    monkeypatch.undo()
    assert main(["data", "check", str(csv)]) == 0


def test_unwritable_destination_is_one_line(tmp_path, capsys):
    csv = write_csv(tmp_path / "fer2013.csv")
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    _one_line_error(capsys, ["data", "cache", csv, blocker / "out" / "fer.npz"],
                    "cannot create the folder", "a part of the path is a file")
    (tmp_path / "folder.npz").mkdir()
    _one_line_error(capsys, ["data", "cache", csv, tmp_path / "folder.npz"],
                    "that path is a folder")


def test_checkpoint_save_on_a_full_disk_keeps_the_previous_checkpoint(tiny_checkpoint,
                                                                      tmp_path, monkeypatch):
    from safetensors import SafetensorError

    import ferkit.checkpoint as checkpoint

    model = ferkit.load_checkpoint(tiny_checkpoint)
    saved = ferkit.save_checkpoint(model, tmp_path / "ckpt")
    before = {p.name: p.read_bytes() for p in saved.iterdir()}

    def full(state, path, metadata=None):
        Path(path).write_bytes(b"\0" * 100)
        raise SafetensorError("Error while serializing: I/O error: No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(FerkitError, match=r"cannot write .*model.safetensors: .*No space"):
        ferkit.save_checkpoint(model, saved, metrics={"acc": 1.0})
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    ferkit.load_checkpoint(saved)


def test_evaluate_report_to_an_unwritable_path_is_one_line(tiny_checkpoint, tmp_path, capsys):
    csv = write_csv(tmp_path / "fer2013.csv")
    blocker = tmp_path / "file"
    blocker.write_text("")
    _one_line_error(capsys, ["evaluate", tiny_checkpoint, "--data", csv, "--split", "test",
                             "--json", blocker / "report.json"],
                    f"cannot create the folder {blocker}")


def test_atomic_path_keeps_the_old_file_on_any_error(tmp_path):
    target = atomic.write_text(tmp_path / "report.json", "old")
    with pytest.raises(KeyboardInterrupt), atomic.atomic_open(target) as fh:
        fh.write("half of the new")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == [
        "report.json"]
    with atomic.atomic_path(tmp_path / "plot.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path  # formats infer from suffix
        tmp.write_bytes(b"png")
    assert (tmp_path / "plot.png").read_bytes() == b"png"


def test_models_add_on_a_full_disk_or_unwritable_home_is_one_line(tiny_checkpoint, tmp_path,
                                                                  capsys, monkeypatch):
    import shutil

    home = tmp_path / "home"
    monkeypatch.setenv("FERKIT_HOME", str(home))

    def full(src, dst, **kwargs):
        Path(dst).write_bytes(b"\0" * 10)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", full)
    _one_line_error(capsys, ["models", "add", "mine", tiny_checkpoint],
                    f"cannot write {home / 'models' / 'mine'}: No space left on device")
    assert list((home / "models").iterdir()) == []  # no half-added model, no staging folder
    monkeypatch.undo()
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("FERKIT_HOME", str(blocker / "home"))
    _one_line_error(capsys, ["models", "add", "mine", tiny_checkpoint],
                    "cannot create the folder", "a part of the path is a file")
