#!/usr/bin/env bash
# The GPU run, sized for a short lease of one H100 or H200: correctness on the GPU first, then
# LLaVA-1.5-7B's shape with random weights (bench/generation.py), in parts that each fit in a
# few minutes, so that a part that fails can be run again. Run from the repository root:
#
#   bench/gpu.sh wheels          # here, where PyPI is reachable: what the GPU machine lacks,
#                                # as wheels in .whl/ (bitsandbytes; this project's transformers
#                                # and the regex it needs)
#   bench/gpu.sh check int4      # on the GPU: tests/test_gpu.py, then the headline row
#   bench/gpu.sh nf4 fp16        # on the GPU: the baselines and the other rows
#
# Parts, in the order given:
#   check  tests/test_gpu.py: int4 on CUDA, the compiled loop in CUDA graphs (1-2 min)
#   int4   fast int4 compiled, the engine's fastest 4-bit path
#   nf4    plain nf4 (transformers' generate on bitsandbytes 4-bit, the baseline) and fast nf4
#   fp16   fast fp16 compiled and plain fp16
# The first bench part builds the 7B checkpoint in /tmp/bench-llava-1.5-7b; the others reuse it.
# Each bench part writes $OUT/generation-<part>.json (OUT defaults to bench/results), again
# after every row; everything printed also goes to $OUT/gpu.log. Rows that answer one at a time measure one stream
# only (their aggregate is their one-stream rate); every row runs twice (--runs 2).
# A dry run of the whole script on a CPU, before a lease: DEVICE=cpu SHAPE=llava-small
# bench/gpu.sh check int4 nf4 fp16 (the GPU tests skip; the rows run at the small shape).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
DEVICE=${DEVICE:-cuda}
SHAPE=${SHAPE:-llava-1.5-7b}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
PIP_TARGET=/tmp/gpu-site

wheels() {  # the GPU machine's Python is 3.12; regex: transformers checks its version
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    local name
    for name in bitsandbytes transformers regex; do
        "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d .whl "$(grep -i "^$name==" constraints.txt)"
    done
    ls -la .whl
}

setup() {
    local wheel
    for wheel in .whl/*.whl; do  # one at a time: a wheel for another Python is left out
        [ -e "$wheel" ] || continue
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$PIP_TARGET" "$wheel" 2>/dev/null || echo "not installed: $wheel"
    done
    [ -d "$PIP_TARGET" ] && export PYTHONPATH="$PIP_TARGET${PYTHONPATH:+:$PYTHONPATH}"
    export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem \
        --format=csv 2>&1
    "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'cuda', torch.version.cuda)"
}

rows() {  # part name, then comma-separated rows
    local part=$1 configs=$2 start=$SECONDS
    "$PY" -m bench --device "$DEVICE" --shape "$SHAPE" --configs "$configs" --runs 2 \
        --plain-streams 1 --shape-dir "/tmp/bench-$SHAPE" --row-timeout 300 \
        --out "$OUT/generation-$part.json"
    echo "part $part: $((SECONDS - start)) s"
}

[ $# -gt 0 ] || { sed -n '2,21p' "$0"; exit 2; }
[ "$1" = wheels ] && { wheels; exit; }
main() {
    setup
    local status=0
    for part in "$@"; do
        case $part in
            check) "$PY" -m pytest tests/test_gpu.py -q -p no:cacheprovider || status=1 ;;
            int4) rows int4 "fast int4 compiled" || status=1 ;;
            nf4) rows nf4 "plain nf4,fast nf4" || status=1 ;;
            fp16) rows fp16 "fast fp16 compiled,plain fp16" || status=1 ;;
            *) echo "unknown part $part (check, int4, nf4, fp16, wheels)"; return 2 ;;
        esac
    done
    return $status
}
main "$@" 2>&1 | tee -a "$OUT/gpu.log"
