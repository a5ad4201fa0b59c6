#!/usr/bin/env bash
# Train, calibrate and evaluate the next default model on a GPU machine in one command
# (issue #12), leaving the checkpoint and every figure in $OUT.
#
# Environment on the device machine (ferkit's device tool: one H200, 16 cores, a copy of the
# working tree, 10 minutes per call): its image's python3 already holds torch (2.11 + CUDA),
# torchvision, lightning, timm, torchmetrics, typer, rich, pyyaml, safetensors, pillow,
# numpy, onnx and onnxruntime (/work/.library/device/KINDS.md), i.e. everything training
# and evaluation import, so no virtual environment travels: ferkit runs from src/ on
# PYTHONPATH.  (If a later image lacks one, carry it as wheels: the device README's note.)
# The datasets do not travel with the tree (../shared is outside it): pack them first, here:
#
#   python scripts/gpu_data.py pack .gpu_data --fer2013 ../shared/data/fer2013/fer2013.csv.gz \
#       --ferplus ../shared/data/ferplus/fer2013new.csv
#
# then run on the device (carry .gpu_data; timeout 600):
#
#   run(command="bash scripts/gpu_train.sh", carry=[".gpu_data"], timeout_s=600)
#
# and back here, with the files it returned (FILES_AT = the reply's files_at):
#
#   python scripts/gpu_data.py join FILES_AT/ckpt runs/gpu/best
#   ferkit evaluate runs/gpu/best -d ../shared/data/expw_dev            # photos: here, on CPU
#   python scripts/ship_default_model.py runs/gpu/best --data ../shared/data/fer2013/fer2013.csv.gz \
#       --expw ../shared/data/expw_dev --hardware "1 NVIDIA H200" --train-minutes M
#
# What comes back in $OUT (the device returns at most 8 files of 16 MiB):
#   ckpt/config.json, ckpt/model.safetensors.part0..N   best checkpoint, fp16, temperature set
#   metrics.json     FER2013 PrivateTest (original labels), FER+ PrivateTest (majority
#                    labels), the temperature fitted on PublicTest, timings
#   train_log.txt    the training log
# Sizing: EPOCHS (default 30) is a guess for a 10-minute call (about 8 s per epoch expected
# on the H200, mostly data loading on 14 workers); the log prints each epoch's time, so the
# first run tells the next what fits.  Nothing here needs a GPU: tests/test_gpu_path.py runs
# it on CPU with EPOCHS=1 on a tiny synthetic FER2013.
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS=${EPOCHS:-30}
RECIPE=${RECIPE:-ferplus_dsan_photo}
PACK=${PACK:-.gpu_data}
DATA=${DATA:-/tmp/ferkit_gpu_data}
RUN=${RUN:-/tmp/ferkit_gpu_run}
OUT=${OUT:-/tmp/ferkit_gpu_out}
EXPW=${EXPW:-}                      # an expw_dev folder, if one travelled (it is 29 MB)
DEVICE=${DEVICE:-$(python3 -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')}
CORES=$(nproc)
WORKERS=${WORKERS:-$(( CORES > 2 ? CORES - 2 : 0 ))}
EXTRA_SET=${EXTRA_SET:-}            # more --set overrides, e.g. "--set trainer.batch_size=8"
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
mkdir -p "$OUT" "$RUN"
start=$(date +%s)
stamp() { echo "[gpu_train $(( $(date +%s) - start ))s] $*"; }

stamp "python $($PYTHON -c 'import sys; print(sys.version.split()[0])'), torch" \
      "$($PYTHON -c 'import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")')," \
      "device $DEVICE, $CORES cores, $WORKERS loader workers, $EPOCHS epochs"
$PYTHON scripts/gpu_data.py unpack "$PACK" "$DATA"
stamp "data unpacked"

# shellcheck disable=SC2086
$PYTHON -m ferkit train -r "$RECIPE" -d "$DATA/ferplus/fer2013new.csv" --out "$RUN" \
    --set trainer.epochs="$EPOCHS" --set data.num_workers="$WORKERS" \
    --set trainer.progress_bar=false $EXTRA_SET 2>&1 | tee "$OUT/train_log.txt"
train_s=$(( $(date +%s) - start ))
stamp "trained"

# fp16 weights (the package format) first, so calibration and evaluation measure what ships.
$PYTHON - "$RUN/best" "$RUN/ship" <<'EOF'
import sys
from ferkit import load_checkpoint, save_checkpoint
save_checkpoint(load_checkpoint(sys.argv[1]), sys.argv[2], half=True)
EOF
$PYTHON -m ferkit calibrate "$RUN/ship" -d "$DATA/fer2013/fer2013.npz" --split val \
    --device "$DEVICE" -b 512 --format json > "$RUN/calibration.json"
$PYTHON -m ferkit evaluate "$RUN/ship" -d "$DATA/fer2013/fer2013.npz" --split test \
    --device "$DEVICE" -b 512 --json "$RUN/fer2013_privatetest.json" --format quiet
$PYTHON -m ferkit evaluate "$RUN/ship" -d "$DATA/ferplus/fer2013new.csv" --split test \
    --device "$DEVICE" -b 512 --json "$RUN/ferplus_privatetest_majority.json" --format quiet
if [ -n "$EXPW" ]; then
  $PYTHON -m ferkit evaluate "$RUN/ship" -d "$EXPW" --device "$DEVICE" -b 512 \
      --json "$RUN/expw_dev.json" --format quiet
fi
stamp "calibrated and evaluated"

$PYTHON - "$RUN" "$OUT/metrics.json" "$train_s" "$EPOCHS" <<'EOF'
import json, sys
from pathlib import Path
run, out, train_s, epochs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
metrics = {"train_seconds": train_s, "epochs": epochs,
           "calibration": json.loads((run / "calibration.json").read_text())}
for name in ("fer2013_privatetest", "ferplus_privatetest_majority", "expw_dev"):
    path = run / f"{name}.json"
    if path.is_file():
        r = json.loads(path.read_text())
        metrics[name] = {k: r[k] for k in ("num_samples", "accuracy", "mean_class_accuracy",
                                           "f1_macro")}
        metrics[name]["recall"] = {c: m["recall"] for c, m in r["per_class"].items()}
        metrics[name]["ece"] = r["calibration"]["ece"]
        metrics[name]["ece_uncalibrated"] = r["calibration"].get("ece_uncalibrated")
out.write_text(json.dumps(metrics, indent=2) + "\n")
print(json.dumps({k: v for k, v in metrics.items() if k != "calibration"}, indent=2))
EOF
$PYTHON scripts/gpu_data.py split "$RUN/ship" "$OUT/ckpt"
stamp "done: $(ls "$OUT" "$OUT/ckpt" | tr '\n' ' ')"
