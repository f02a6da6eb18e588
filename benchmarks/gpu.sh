#!/usr/bin/env bash
# The GPU rows of BENCHMARKS.md in one prepared run (issue 12): SD 1.5 inpainting architecture
# with random weights (no download), 512 px, bf16. Each step has its own time limit, so one slow
# step cannot eat the others' time. Figures go to $OUT (default ./gpu-bench) as JSON and logs.
#
#   OUT=/tmp/gpu-bench bash benchmarks/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-bench}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c "import torch, diffusers; print(torch.__version__, diffusers.__version__)" >> "$OUT/gpu.txt"
bench() {  # name, limit in seconds, throughput.py options
    local name="$1" limit="$2"
    shift 2
    echo "== $name" | tee -a "$OUT/summary.txt"
    timeout "$limit" python3 benchmarks/throughput.py --arch sd15 --device cuda --dtype bf16 \
        --json "$OUT/$name.json" "$@" > "$OUT/$name.log" 2>&1
    echo "exit $?" >> "$OUT/$name.log"
    grep -E "^(tool|baseline) |ratio|TFLOP|exit" "$OUT/$name.log" | tee -a "$OUT/summary.txt"
}
# 25 steps, CFG 7.5, batch 16: tool against the naive loop (the loop on 8 images: it is slow)
bench b16 150 --batch-size 16 --baseline-images 8
# the batch size that is fastest
bench b8 80 --batch-size 8 --skip-baseline
bench b32 100 --batch-size 32 --skip-baseline
# regional compilation of the repeated blocks (warm-up = compile time)
bench b16-compile 180 --batch-size 16 --skip-baseline --compile regional
# the fast preset's compute: 4 steps, guidance 1 (the fused LCM-LoRA costs nothing at run time)
bench fast-b32 80 --batch-size 32 --steps 4 --guidance 1.0 --skip-baseline
