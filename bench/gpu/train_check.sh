#!/usr/bin/env bash
# The training step's checks and numbers in one call on the GPU machine (a lease is short): the CUDA op
# tests and the training and trainer parity tests (as scripts/gpu-check runs them; no model parity, no
# sanitizer), the train phase of the benchmark against transformers, and the train phase once more under
# MOE_CUDA_PROFILE=1 (where the time goes, op by op; a profiled step waits after every op, so its time is
# not a benchmark number). Logs go to OUT_DIR; a summary is printed last.
#
#   bench/gpu/train_check.sh BUILD_DIR [OUT_DIR] [RUNS]    (defaults: OUT_DIR = BUILD_DIR/train-check, RUNS 3)
set -uo pipefail
cd "$(dirname "$0")/../.."
build=$(cd "${1:?usage: train_check.sh BUILD_DIR [OUT_DIR] [RUNS]}" && pwd) || exit 2
out=${2:-$build/train-check}
runs=${3:-3}
mkdir -p "$out"
export NCCL_NVLS_ENABLE=0
checkpoint=/tmp/moe_seed_1.2b_bf16

libs=$build/lib
for d in /usr/local/cuda/lib64 $(python3 -c 'import os, nvidia; print(" ".join(os.path.join(p, q, "lib") for p in nvidia.__path__ for q in os.listdir(p)))' 2>/dev/null); do
  [[ -d "$d" ]] && libs=$libs:$d
done
export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The tests find their fixtures through the source path in the build's cache (as scripts/gpu-check does).
source_dir=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt")
if [[ -n "$source_dir" && "$source_dir" != "$PWD" && ! -e "$source_dir" ]]; then
  mkdir -p "$(dirname "$source_dir")" && ln -s "$PWD" "$source_dir"
fi
limit=${TRAIN_CHECK_TEST_LIMIT:-240}
: >"$out/tests.txt"
for t in "op-tests moe_ops_test --gtest_filter=Backends/*/cuda:ReferenceGradients.*" "train-parity moe_train_tests" \
  "trainer moe_trainer_tests"; do
  set -f
  set -- $t
  set +f
  name=$1 program=$2
  shift 2
  start=$SECONDS
  MOE_PLUGIN_DIR=$build/lib/moe/plugins MOE_SOURCE_DIR=$PWD MOE_BUILD_DIR=$build MOE_TEST_BACKEND=cuda \
    timeout "$limit" "$build/bin/$program" "$@" >"$out/$name.log" 2>&1
  echo "$name: exit $? in $((SECONDS - start)) s; $(grep -h '^\[  PASSED\|^\[  FAILED  \] [0-9]\|^\[  SKIPPED \] [0-9]' "$out/$name.log" | tr '\n' ' ')" >>"$out/tests.txt"
done
grep -h -B2 -A12 "^\[  FAILED  \]\|Failure$" "$out"/*.log 2>/dev/null | head -80 >"$out/failures.txt"

python3 bench/gpu/run_gpu_bench.py --build "$build" --phases train --runs "$runs" --checkpoint "$checkpoint" \
  --json "$out/bench.jsonl" >"$out/bench.txt" 2>"$out/bench.log"

MOE_PLUGIN_PATH=$build/lib/moe/plugins MOE_CUDA_PROFILE=1 MOE_CUDA_F32_MATH=bf16 timeout 120 \
  "$build/bin/moe_bench_gpu" "$checkpoint" --phase train --batch 16 --seq 512 --runs 2 --warmup 1 >"$out/profile.json" 2>"$out/profile.txt"

echo "== failures (first lines)"
head -40 "$out/failures.txt"
echo "== profile (train, MOE_CUDA_F32_MATH=bf16)"
head -30 "$out/profile.txt"
echo "== tests"
cat "$out/tests.txt"
echo "== benchmark"
cat "$out/bench.txt"
