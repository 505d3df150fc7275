#!/usr/bin/env bash
# The GPU check, for a machine with a CUDA GPU (it refuses to run without one):
#   1. the tests that run only on CUDA (the engine's float16 autocast and channels-last path), and the
#      device tests;
#   2. the anchor (benchmarks/cifar_anchor.py, airbench94) and cifar_best's recipe (the Muon recipe), seed 0,
#      each its whole schedule, in float16 autocast with channels-last, on a small CIFAR-10 copy: one after the
#      other through `cifar_anchor.py --with-recipe`, the command the CPU figures come from;
#   3. its side-by-side table: accuracy, counted and wall seconds, the median seconds per epoch of each (the
#      first epoch, which pays for CUDA's start-up and kernel selection, does not set the median) and the ratio.
# Make the copy first where the full data set is (52 MB with the defaults, small enough to carry along):
#   python benchmarks/make_cifar_subset.py --out benchmarks/runs/gpu_subset
# then, on the GPU machine, from the repository root:
#   bash benchmarks/gpu_check.sh [SUBSET_DIR (default benchmarks/runs/gpu_subset/gpu_subset)] [OUT_DIR]
set -euo pipefail
subset="${1:-benchmarks/runs/gpu_subset/gpu_subset}"
out="${2:-${OUT:-benchmarks/runs/gpu_check}}"
python="${PYTHON:-python}"

if ! "$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check.sh: no CUDA GPU here; run it on a machine with one" >&2
  exit 2
fi
if [ ! -d "$subset/cifar-10-batches-py" ]; then
  echo "gpu_check.sh: no CIFAR-10 copy in $subset; make one with python benchmarks/make_cifar_subset.py" >&2
  exit 2
fi
mkdir -p "$out"
"$python" - <<'EOF'
import torch
p = torch.cuda.get_device_properties(0)
print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF

echo "== CUDA tests"
"$python" -m pytest -q -p no:cacheprovider -n 0 -rs tests/shared_utils/test_engine_tasks.py tests/shared_utils/test_seed_device.py

echo "== the anchor, then the recipe: float16 autocast + channels-last, $(ls "$subset"/cifar-10-batches-py | wc -l) batch files in $subset"
export DL_DATA_DIR="$subset"
"$python" benchmarks/cifar_anchor.py --device cuda --seeds 0 --with-recipe --quiet --out "$out"
echo "== side by side ($out/cifar_anchor/comparison.md)"
cat "$out/cifar_anchor/comparison.md"
