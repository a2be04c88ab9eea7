#!/usr/bin/env bash
# Where the CUDA backend's time goes in each benchmark phase: runs moe_bench_gpu once per phase with
# MOE_CUDA_PROFILE=1 (backends/cuda/op_profile.h), which prints each op's share of the time to stderr.
# The profiled runs wait after every op, so their times are not benchmark numbers.
#
#   bench/gpu/profile_phases.sh [BUILD_DIR] [CHECKPOINT_DIR]   (defaults: build/gpu, /tmp/moe_seed_1.2b_bf16)
# The checkpoint is made as run_gpu_bench.py makes it when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(cd "${1:-build/gpu}" && pwd)
checkpoint=${2:-/tmp/moe_seed_1.2b_bf16}
[[ -f "$checkpoint/model.safetensors" ]] ||
  python3 bench/make_random_checkpoint.py bench/configs/seed-1.2b-mixtral.json "$checkpoint" --seed 0 --dtype bf16 >&2
libs=$build/lib
for d in /usr/local/cuda/lib64 $(python3 -c 'import os, nvidia; print(" ".join(os.path.join(p, q, "lib") for p in nvidia.__path__ for q in os.listdir(p)))' 2>/dev/null); do
  [[ -d "$d" ]] && libs=$libs:$d
done
export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} NCCL_NVLS_ENABLE=0 MOE_CUDA_PROFILE=1
export MOE_PLUGIN_PATH=$build/lib/moe/plugins
bench=$build/bin/moe_bench_gpu
echo "== prefill 32x128"; "$bench" "$checkpoint" --phase prefill --batch 32 --seq 128 --runs 3 --warmup 1
echo "== decode batch 1, 16 new"; "$bench" "$checkpoint" --phase decode --batch 1 --prompt 16 --new 16 --runs 2 --warmup 1
echo "== train 16x512 (MOE_CUDA_F32_MATH=bf16)"
MOE_CUDA_F32_MATH=bf16 "$bench" "$checkpoint" --phase train --batch 16 --seq 512 --runs 2 --warmup 1
