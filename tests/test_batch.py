"""Batch inference pieces that need no Ray runtime: input listing, actor sizing, the results
folder's atomic parts and resume bookkeeping (tests/test_batch_ray.py runs the jobs)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ferkit.batch.output import PartWriter, completed_sources, list_parts, remove_partial
from ferkit.batch.resources import plan_resources
from ferkit.batch.sources import list_sources, read_bytes
from ferkit.errors import FerkitError, InputError


def test_default_plan_always_leaves_a_cpu_for_the_detect_tasks():
    # The measured hang: two 1-CPU actors on a 2-CPU runtime leave the read tasks nothing.
    with pytest.raises(FerkitError, match="wait forever"):
        plan_resources({"CPU": 2.0}, actors=2, actor_cpus=1)
    for cpus in (1, 2, 3, 4, 8, 64):
        plan = plan_resources({"CPU": float(cpus)})
        assert plan.free_for_tasks >= plan.task_cpus, plan
        assert plan.actors >= 1
    assert plan_resources({"CPU": 64.0}).actors == 16
    gpu = plan_resources({"CPU": 32.0, "GPU": 4.0})
    assert (gpu.actors, gpu.actor_gpus, gpu.actor_cpus) == (4, 1.0, 1.0)
    with pytest.raises(FerkitError, match="has 0 GPUs"):
        plan_resources({"CPU": 8.0}, gpus_per_actor=1)
    with pytest.raises(FerkitError, match="use --actors 2"):
        plan_resources({"CPU": 32.0, "GPU": 2.0}, actors=3)


def test_inputs_from_folders_globs_lists_and_uris(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/1.jpg", "a/2.png", "a/notes.md", "3.jpg"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text(f"# photos\n{tmp_path / '3.jpg'}\n\ns3://bucket/k.jpg\n")
    pq.write_table(pa.table({"uri": [str(tmp_path / "a" / "1.jpg"), "gs://b/x.png"]}),
                   tmp_path / "list.parquet")
    sources, problems = list_sources([str(tmp_path / "a"), str(tmp_path / "*.jpg"),
                                      str(tmp_path / "list.txt"), str(tmp_path / "list.parquet"),
                                      f"file://{tmp_path}/a/", str(tmp_path / "missing.jpg")])
    assert sources == [str(tmp_path / "a" / "1.jpg"), str(tmp_path / "a" / "2.png"),
                       str(tmp_path / "3.jpg"), "s3://bucket/k.jpg", "gs://b/x.png",
                       f"file://{tmp_path}/a/1.jpg", f"file://{tmp_path}/a/2.png"]
    assert problems == [(str(tmp_path / "missing.jpg"),
                         f"{tmp_path / 'missing.jpg'} does not exist")]
    pq.write_table(pa.table({"name": ["x"]}), tmp_path / "bad.parquet")
    with pytest.raises(FerkitError, match="needs a column named one of source, path, uri"):
        list_sources([str(tmp_path / "bad.parquet")])


def test_read_bytes_through_a_pyarrow_filesystem(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\xff\xd8abc")
    assert read_bytes(f"file://{tmp_path}/x.jpg") == b"\xff\xd8abc"
    with pytest.raises(InputError, match="does not exist"):
        read_bytes(f"file://{tmp_path}/none.jpg")
    with pytest.raises(InputError, match="does not exist"):
        read_bytes(str(tmp_path / "none.jpg"))


def _rows(source: str, n: int, version: str = "v1") -> pa.Table:
    """The rows of one input with ``n`` faces (one row when n == 0)."""
    count = max(1, n)
    return pa.table({"source": [source] * count,
                     "face_index": pa.array(list(range(n)) if n else [None], pa.int32()),
                     "model": ["m"] * count, "model_version": [version] * count,
                     "source_rows": [count] * count})


def test_parts_hold_whole_inputs_and_resume_sees_them(tmp_path):
    out = str(tmp_path / "out")
    writer = PartWriter(out, rows_per_part=3, seconds_per_part=1e9)
    writer.add(pa.concat_tables([_rows("a", 2), _rows("b", 3).slice(0, 1)]))
    # 3 rows waiting, but b has 1 of its 3: only a is written, b is held back.
    assert len(writer.parts) == 1
    assert pq.read_table(writer.parts[0]).column("source").to_pylist() == ["a", "a"]
    assert completed_sources(out) == {"a"}
    writer.add(_rows("b", 3).slice(1, 2))
    writer.add(_rows("c", 0))
    writer.close()
    assert len(list_parts(out)) == 3  # a; b once complete; c at close
    assert completed_sources(out, model_version="v1") == {"a", "b", "c"}
    table = pq.read_table(out)
    assert sorted(table.column("source").to_pylist()) == ["a", "a", "b", "b", "b", "c"]
    with pytest.raises(FerkitError, match="another --out"):
        completed_sources(out, model_version="v2")


def test_leftovers_of_a_killed_write_are_removed_and_never_read(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".part-dead.1a2b3c4d.tmp.parquet").write_bytes(b"PAR1 half a file")
    assert completed_sources(str(out)) == set()
    assert remove_partial(str(out)) == 1
    assert list(out.iterdir()) == []
    (out / "part-broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(FerkitError, match="move it away"):
        completed_sources(str(out))


def test_without_ray_everything_else_works_and_batch_says_what_to_install(tmp_path,
                                                                         monkeypatch, capsys):
    import subprocess
    import sys

    # A fresh interpreter where `import ray` fails, as after `pip install ferkit`.
    code = ("import sys; sys.modules['ray'] = None\n"
            "from ferkit.cli import main\n"
            "assert main(['--help']) == 0\n"
            "import ferkit.batch\n"
            "assert 'ray' not in [m.split('.')[0] for m in sys.modules if sys.modules[m]]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "batch" in done.stdout and "predict" in done.stdout

    from ferkit.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    (tmp_path / "x.jpg").write_bytes(b"x")
    assert main(["batch", str(tmp_path / "x.jpg"), "--out", str(tmp_path / "out")]) == 2
    assert "pip install 'ferkit[ray]'" in capsys.readouterr().err
