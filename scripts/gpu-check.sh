#!/usr/bin/env bash
# GPU check, for a machine with nvcc, cmake and a CUDA GPU (no Node needed). Builds the native core
# with CUDA, runs every C++ test (the CUDA op tests against their CPU twins, stories260K on the GPU
# against golden.json, speculative == plain, sampling exactness), then the C++ benchmarks (the GPU,
# then the host CPU's kernels: AVX-512 / AMX where it has them), and prints a short table last. Sized
# for under 8 minutes on an H100.
#
#   scripts/prepare-gpu-assets.sh      # once, where ../shared exists: copies the test assets
#   scripts/gpu-check.sh               # on the GPU machine (logs and results go to $OUT or ./gpu-check-out)
#
# Environment: CHIMERA_GPU_ASSETS (default .gpu-assets: shared/models/stories260K and
# stories260K.chimera.safetensors), CUDA_ARCHS (default: the GPU's own, e.g. 90).
set -uo pipefail
cd "$(dirname "$0")/.."
ASSETS="${CHIMERA_GPU_ASSETS:-.gpu-assets}"
OUTDIR="${OUT:-gpu-check-out}"
mkdir -p "$OUTDIR"
LOG="$OUTDIR/gpu-check.log"
RESULTS="$OUTDIR/results.jsonl"
: > "$RESULTS"
status=0
say() { echo "== $* ($(date +%T))" | tee -a "$LOG"; }

say "device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$LOG"
ARCH="${CUDA_ARCHS:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')}"
ARCH="${ARCH:-90}"

say "build (CUDA arch $ARCH)"
if ! { cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$ARCH" \
         -DCHIMERA_SHARED_DIR="$PWD/$ASSETS/shared" && cmake --build build-gpu -j"$(nproc)"; } >> "$LOG" 2>&1; then
  tail -40 "$LOG"
  echo "BUILD FAILED"
  exit 1
fi

DRAFT="$PWD/$ASSETS/stories260K.chimera.safetensors"
[ -f "$DRAFT" ] && export CHIMERA_STORIES_DRAFT="$DRAFT"

say "C++ tests"
if ! timeout 120 ctest --test-dir build-gpu --output-on-failure -E test_cuda > "$OUTDIR/ctest.log" 2>&1; then status=1; fi
grep -E "tests passed|Failed|Skipped|\*\*\*" "$OUTDIR/ctest.log" | tee -a "$LOG"
for t in test_cuda_ops test_cuda_model; do
  echo "-- $t" >> "$OUTDIR/cuda-tests.log"
  timeout 90 env CHIMERA_SHARED_DIR="$PWD/$ASSETS/shared" "build-gpu/$t" >> "$OUTDIR/cuda-tests.log" 2>&1
  rc=$?
  if [ "$rc" = 124 ] && [ "${CHIMERA_CUDA_PDL:-1}" != 0 ]; then
    echo "$t timed out with programmatic dependent launch: the rest runs with CHIMERA_CUDA_PDL=0" | tee -a "$LOG"
    export CHIMERA_CUDA_PDL=0
    timeout 90 env CHIMERA_SHARED_DIR="$PWD/$ASSETS/shared" "build-gpu/$t" >> "$OUTDIR/cuda-tests.log" 2>&1
    rc=$?
  fi
  echo "$t exit $rc" | tee -a "$LOG"
  [ "$rc" = 0 ] || status=1
done
grep -E "FAIL|DIFFER|identical|chi2|bit for bit|golden|failure" "$OUTDIR/cuda-tests.log" | head -40

say "benchmarks"
STORIES="$ASSETS/shared/models/stories260K/stories260K.gguf"
DRAFT_FLAG=()
[ -f "$DRAFT" ] && DRAFT_FLAG=(--draft "$DRAFT")
timeout 60 build-gpu/chimera_bench model --model "$STORIES" "${DRAFT_FLAG[@]}" --backend cuda --tokens 256 \
  | tee -a "$RESULTS"
TAU=$(python3 -c "
import json,sys
for l in open('$RESULTS'):
    d=json.loads(l)
    if d.get('case','').endswith('chimera chimera-25'): print(d['tokens_per_step'])" 2>/dev/null | head -1)
timeout 60 build-gpu/chimera_bench synthetic --tau "${TAU:-0}" | tee -a "$RESULTS"
# The same without programmatic dependent launch, for comparison in this run.
CHIMERA_CUDA_PDL=0 timeout 60 build-gpu/chimera_bench synthetic --tau "${TAU:-0}" \
  | grep -v '"op ' | sed 's/"case":"\([^"]*\)"/"case":"\1 (no PDL)"/' | tee -a "$RESULTS"

# The host CPU (issue: CPU kernels at the hardware limit): the same synthetic model on the CPU backend,
# with its best kernels (AMX where the CPU has it), then without AMX, for the verify-cost curve.
say "host CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) threads"
grep -m1 -o -w -E 'amx_bf16|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ' | tee -a "$LOG"; echo | tee -a "$LOG"
timeout 150 build-gpu/chimera_bench synthetic --backend cpu --threads "$(nproc)" \
  | grep -v '"op ' | sed 's/"case":"\([^"]*\)"/"case":"cpu: \1"/' | tee -a "$RESULTS"
if grep -q -w amx_bf16 /proc/cpuinfo; then
  CHIMERA_CPU_AMX=0 timeout 150 build-gpu/chimera_bench synthetic --backend cpu --threads "$(nproc)" \
    | grep -v '"op ' | sed 's/"case":"\([^"]*\)"/"case":"cpu, no AMX: \1"/' | tee -a "$RESULTS"
fi

say "table"
python3 - "$RESULTS" <<'PY' | tee "$OUTDIR/table.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith('{')]
print(f"{'case':44} {'value':>40}")
for d in rows:
    c = d.pop('case')
    keys = [k for k in ('path','amx','threads','tokens_per_s','ratio_vs_plain','tokens_per_step','fraction_of_copy_bw','achieved_gbs',
                        'copy_gbs','ms','cost_vs_decode_step','projected_speedup','us','gbs') if k in d]
    print(f"{c:44} " + ", ".join(f"{k}={d[k]}" for k in keys))
PY
exit $status
