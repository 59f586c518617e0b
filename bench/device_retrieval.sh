#!/usr/bin/env bash
# The retrieval benchmark (bench/retrieval.py) at the full budget, on a lent GPU machine.
#
# The 2-core CPU affords only 2 epochs on 1,600 patches for the 19 trainings; a GPU machine
# runs all 19 at once on the full training split. The machine is lent for minutes, so the
# script first times one epoch of all 19 trainings together (calibration), then picks the most
# epochs (at most 30, the shipped model's budget) that fit in what is left of BUDGET seconds.
# Every method and ablation trains with that same budget.
#
# Expects, beside the checkout: .whl/ (faiss-cpu, nibabel, pydicom wheels for the machine's
# Python) and .gpu/brain-atlas.tar.gz (data/brain-atlas, built here by `make data`).
# Results: $OUT/retrieval.json (+ calibration.json and both logs).
set -uo pipefail
OUT=${OUT:-/tmp/acir-device-out}
BUDGET=${BUDGET:-540}
MAX_EPOCHS=${MAX_EPOCHS:-30}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu JOBS=2 EXTRA="--quick" PYTHON=.venv/bin/python: a dry run here
JOBS=${JOBS:-19}
read -r -a extra <<<"${EXTRA:-}"
started=$(date +%s)
elapsed() { echo $(($(date +%s) - started)); }
mkdir -p "$OUT"

if [ -d .whl ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
[ -f data/brain-atlas/manifest.csv ] || { mkdir -p data && tar xzf .gpu/brain-atlas.tar.gz -C data; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/env.txt"
"$PYTHON" -c "import faiss, nibabel, pydicom, torch; print('torch', torch.__version__)" \
  | tee -a "$OUT/env.txt" || exit 1

# Many small trainings share one GPU: MPS lets their kernels run side by side. Optional.
if [ "$DEVICE" = cuda ] && nvidia-cuda-mps-control -d 2>/dev/null; then
  if timeout 60 "$PYTHON" -c "import torch; torch.zeros(1, device='cuda').sum().item()"; then
    echo "MPS: on" | tee -a "$OUT/env.txt"
  else
    echo quit | nvidia-cuda-mps-control; echo "MPS: failed, off" | tee -a "$OUT/env.txt"
  fi
fi

common=(--device "$DEVICE" --jobs "$JOBS" --threads 1 --max-train 0 --batch-size 128
        --warmup-epochs 2 --floats-from bench/results/retrieval_floats.json --overwrite "${extra[@]}")
if [ -n "${EPOCHS:-}" ]; then epochs=$EPOCHS; else  # EPOCHS=N skips the calibration
"$PYTHON" bench/retrieval.py "${common[@]}" --epochs 1 --out "$OUT/calibration.json" \
  >"$OUT/calibration.log" 2>&1 || { tail -30 "$OUT/calibration.log"; exit 1; }
left=$((BUDGET - $(elapsed) - 15))
epochs=$("$PYTHON" - "$OUT/calibration.json" "$left" "$MAX_EPOCHS" <<'EOF'
import json, sys
results, left, most = json.load(open(sys.argv[1])), float(sys.argv[2]), int(sys.argv[3])
runs = [run for entry in results["runs"].values() for run in entry["seeds"].values()]
per_epoch = max(run["history"][0]["seconds"] for run in runs)
fixed = max(results["wall_seconds"] - per_epoch, 0.0)
print(max(1, min(most, int((left - fixed) / per_epoch))))
print(f"calibration: {per_epoch:.1f} s/epoch, {fixed:.0f} s fixed, {left:.0f} s left",
      file=sys.stderr)
EOF
)
fi
echo "epochs: $epochs (elapsed $(elapsed) s)" | tee -a "$OUT/env.txt"
timeout $((BUDGET - $(elapsed))) "$PYTHON" bench/retrieval.py "${common[@]}" --epochs "$epochs" \
  --out "$OUT/retrieval.json" >"$OUT/retrieval.log" 2>&1
echo "exit $? after $(elapsed) s" | tee -a "$OUT/env.txt"
grep -E "bench.retrieval (acir|hashnet|dpsh|dsh|csq)" "$OUT/retrieval.log" | cut -c1-200
