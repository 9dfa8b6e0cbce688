#!/usr/bin/env bash
# Every GPU check of issue 12 in one run, from the repository root, in under 10 minutes, no network:
#   (a) bench/bench_llm.py at the embedded SmolLM2-135M shape and at LLaMA-2-7B's (random bf16 weights),
#       batch 16 (the paper's) and a batch that fills the device;
#   (b) notebooks 01 -> 06 in the smoke preset on cuda with the real embedded model;
#   (c) `accelerate launch -m recinterp.tasks` of one short adapter training;
#   (d) task 2's learning curve (recinterp.curve, issue 20): the paper's route trained on through the
#       frozen LLM at GPU speed to thousands of steps, evaluated like the cpu preset's headline, beside
#       the aligned route.  It starts once the benchmark is done (the benchmark's timings need the device
#       to themselves) and runs beside (b) and (c), which are small, with all that is left of
#       CHECK_LIMIT_S (570 s: the whole check stays within 10 minutes); its log is curve_log.txt.
#
#   bash bench/device_check.sh                    # on a GPU machine (see docs/guide.md, "Running on a GPU")
#   bash bench/device_check.sh --dry-run          # the same steps on CPU with tiny sizes (minutes)
#   bash bench/device_check.sh --dry-run --stages bench     # stages: bench, notebooks, train, curve (comma-separated)
#
# Output: one folder, $OUT when set (the lent machine's return folder), else results/device_check:
#   summary.json (per stage: status, seconds), log.txt, bench_<arch>.json, curve.csv + curve.png + curve_log.txt,
#   results.tar.gz (notebook outputs, the accelerate run and the curve's runs, without weights).
#   At most 8 files, so all of them come back.
# Prepared by bench/device_prep.sh (here): .whl/ (wheels the GPU image lacks) and .device/part1|part2
# (the GGUF in two parts, SHA-256 checked on arrival; the data with part 1).
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/device_lib.sh

DRY=0
STAGES=bench,notebooks,train,curve
CHECK_LIMIT_S=${CHECK_LIMIT_S:-570}  # the whole check, set-up included (the curve stage takes what is left)
while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) DRY=1 ;;
        --stages) STAGES=$2; shift ;;
        *) echo "unknown option $1 (use --dry-run, --stages bench,notebooks,train,curve)" >&2; exit 2 ;;
    esac
    shift
done
for s in ${STAGES//,/ }; do
    case $s in bench|notebooks|train|curve) ;; *) echo "unknown stage $s (choose from bench, notebooks, train, curve)" >&2; exit 2 ;; esac
done
OUT_DIR=${OUT:-results/device_check}
WORK=${DEVICE_CHECK_WORK:-$( [ -n "${OUT:-}" ] && echo /tmp/recinterp_device_check || echo "$OUT_DIR/work" )}
mkdir -p "$OUT_DIR" "$WORK"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(cd "$WORK" && pwd)
LOG=$OUT_DIR/log.txt
: > "$LOG"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
T_START=$(date +%s)

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }
declare -A STATUS SECONDS_USED
# seconds left of the check's own limit, 10 kept to pack
left_s() { echo $(( CHECK_LIMIT_S - ($(date +%s) - T_START) - 10 )); }
# finished NAME RC SECONDS LIMIT_S: record a stage's status from its exit code, log it, rewrite the summary
finished() {
    SECONDS_USED[$1]=$3
    case $2 in 0) STATUS[$1]=ok ;; 124|137) STATUS[$1]="timeout after ${4}s" ;; *) STATUS[$1]="failed (exit $2)" ;; esac
    log "   $1: ${STATUS[$1]} in $3 s"
    write_summary
}
# stage NAME LIMIT_S CMD...: run with a time limit (never past the check's own), log everything, record it
stage() {
    local name=$1 limit=$2 t0 rc cap
    shift 2
    cap=$(left_s)
    [ "$limit" -le "$cap" ] || limit=$(( cap > 1 ? cap : 1 ))
    log "== $name (limit ${limit}s): $*"
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" >> "$LOG" 2>&1
    rc=$?
    finished "$name" $rc $(( $(date +%s) - t0 )) "$limit"
}
write_summary() {
    {
        echo "{"
        echo "  \"dry_run\": $DRY, \"stages\": \"$STAGES\", \"total_s\": $(( $(date +%s) - T_START )),"
        echo "  \"device\": \"${DEVICE_NAME:-unknown}\", \"git\": \"$(git rev-parse --short HEAD 2>/dev/null || echo none)\","
        echo "  \"results\": {"
        local first=1
        for k in "${!STATUS[@]}"; do
            [ $first = 1 ] || echo ","
            first=0
            printf '    "%s": {"status": "%s", "seconds": %s}' "$k" "${STATUS[$k]}" "${SECONDS_USED[$k]}"
        done
        echo ""
        echo "  }"
        echo "}"
    } > "$OUT_DIR/summary.json.tmp" && mv "$OUT_DIR/summary.json.tmp" "$OUT_DIR/summary.json"
}
has_stage() { [[ ",$STAGES," == *",$1,"* ]]; }

# -- set-up: carried wheels, the embedded GGUF, the data ---------------------------------------------
if ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import gguf, papermill, ipykernel" 2>/dev/null; then
    log "installing $(ls .whl/*.whl | wc -l) carried wheels into /tmp/site"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >> "$LOG" 2>&1 \
        || { log "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
    export PATH=/tmp/site/bin:$PATH
    PY=python3
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
# papermill's kernel "python3": this interpreter, with the same PYTHONPATH
if has_stage notebooks || has_stage train || has_stage curve; then
    "$PY" -m ipykernel install --prefix /tmp/recinterp_jupyter --name python3 >> "$LOG" 2>&1 \
        && export JUPYTER_PATH=/tmp/recinterp_jupyter/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}
fi
# the GGUF: part 1 copied to /tmp/recinterp_gguf by the call before (or carried here too), part 2 carried now
P1=$(ls /tmp/recinterp_gguf/$GGUF_NAME.part-aa .device/part1/$GGUF_NAME.part-aa 2>/dev/null | head -1)
if [ -f ".device/part2/$GGUF_NAME.part-ab" ] && [ -n "$P1" ]; then
    if join_checked /tmp/recinterp_gguf/$GGUF_NAME "$GGUF_SHA256" "$P1" ".device/part2/$GGUF_NAME.part-ab" 2>> "$LOG"; then
        export RECINTERP_EMBEDDED_GGUF=/tmp/recinterp_gguf/$GGUF_NAME
        log "embedded GGUF reassembled, SHA-256 ok: $RECINTERP_EMBEDDED_GGUF"
    else
        log "embedded GGUF: $(tail -1 "$LOG")"
    fi
fi
# the data: carried in part 1 (copied to /tmp/recinterp_gguf/data by call 1), unless already set
for d in /tmp/recinterp_gguf/data .device/part1/data; do
    if [ -z "${RECINTERP_LLARA_DIR:-}" ] && [ -d "$d/llara" ]; then
        export RECINTERP_LLARA_DIR=$(cd "$d/llara" && pwd)
        [ -f "$d/steam_meta/steam_games.json.gz" ] && export RECINTERP_STEAM_META=$(cd "$d/steam_meta" && pwd)/steam_games.json.gz
    fi
    # raw MovieLens-100K (titles): where notebook 01 looks first (its files are SHA-checked when read)
    if [ -d "$d/raw/ml-100k" ] && [ ! -d data/raw/ml-100k ]; then mkdir -p data/raw && cp -r "$d/raw/ml-100k" data/raw/; fi
done
log "data: ${RECINTERP_LLARA_DIR:-not set (notebook 01 would download)}"
if [ $DRY = 1 ]; then DEVICE_NAME=cpu; else
    DEVICE_NAME=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')" 2>> "$LOG")
fi
log "device: $DEVICE_NAME; python: $("$PY" -c 'import sys; print(sys.version.split()[0])'); dry run: $DRY; stages: $STAGES"
nvidia-smi >> "$LOG" 2>&1 || true

if [ $DRY = 1 ]; then
    # arch:time limit (s):batch sizes
    DEV=cpu; BENCH=("tiny:120:2 3"); BENCH_ARGS=(--repeats 1 --single-samples 1 --new-tokens 2 --candidates 3 --align-items 50)
    NB_PARAMS=(--param device=cpu); TRAIN_STEPS=2; LIMITS=(1800 300)
    # the curve at tiny sizes: the smoke preset, the random tiny LLM, a few steps per variant
    # (one torch thread: on a shared CPU two threads fought, an encoder epoch took 800 s instead of 20)
    CURVE_COMMON=(--preset smoke --llm tiny --threads 1); CURVE_DEFAULT="linear:0,2 conv_pool:0,1"; CHECK_LIMIT_S=${DRY_CHECK_LIMIT_S:-3600}
else
    [ "$DEVICE_NAME" != cpu ] || { log "no GPU visible: use --dry-run on a CPU machine"; exit 1; }
    # batch 16 (the paper's) and one that fills an H200 by recinterp.memory's estimate, peak factor included
    # (7B: 113 GB at 128; 256 ran out of memory on the H200); a batch that does not fit is reported as out of
    # memory and the others still run
    DEV=cuda; BENCH=("smollm2-135m:100:16 1024" "llama2-7b:150:16 128"); BENCH_ARGS=(--repeats 3 --single-samples 2)
    NB_PARAMS=(--param device=cuda); TRAIN_STEPS=20; LIMITS=(270 60)
    # the cpu preset's curve (SmolLM2, 60 cases, its controls) with GPU-sized steps; the linear variant first
    CURVE_COMMON=(--preset cpu --threads 0)
    CURVE_DEFAULT="linear:0,100,300,1000 conv_pool:0,300,1000 linear:3000 conv_pool:3000 linear:10000"
fi
# CURVE_PLAN="linear:300 conv_pool:300 ..." replaces the plan; CURVE_EXTRA adds options (e.g. --no-aligned)
CURVE=("${CURVE_COMMON[@]}" --plan ${CURVE_PLAN:-$CURVE_DEFAULT} ${CURVE_EXTRA:-})

# -- (a) the benchmark at both shapes ----------------------------------------------------------------
if has_stage bench; then
    for spec in "${BENCH[@]}"; do
        IFS=: read -r arch limit batches <<< "$spec"
        stage "bench_$arch" "$limit" "$PY" bench/bench_llm.py --arch "$arch" --device $DEV --batch $batches \
            "${BENCH_ARGS[@]}" --out "$OUT_DIR/bench_$arch.json"
    done
fi
# -- (d) task 2's learning curve: started now, in the background, with what is left of the check's limit --
CURVE_PID=
if has_stage curve; then
    left=$(left_s)
    if [ $left -lt 60 ]; then
        STATUS[curve]="skipped: ${left}s left of ${CHECK_LIMIT_S}s"; SECONDS_USED[curve]=0
        log "   curve: ${STATUS[curve]}"; write_summary
    else
        # the curve stops itself (--budget-min) a minute before its limit, so its CSV is whole
        log "== curve (limit ${left}s, in the background beside the other stages; log: curve_log.txt)"
        CURVE_T0=$(date +%s)
        ( timeout --kill-after=10 "$left" "$PY" -m recinterp.curve "${CURVE[@]}" --device $DEV --train-encoder \
              --checkpoint-dir "$WORK/curve/checkpoints" --out "$WORK/curve" \
              --budget-min "$(awk "BEGIN {print ($left - 60) / 60}")" > "$OUT_DIR/curve_log.txt" 2>&1
          echo "$? $(date +%s)" > "$WORK/curve.rc" ) &
        CURVE_PID=$!
    fi
fi
# -- (b) the smoke preset, notebooks 01 -> 06 ---------------------------------------------------------
if has_stage notebooks; then
    stage notebooks "${LIMITS[0]}" "$PY" -m recinterp.reproduce --preset smoke --results "$WORK/results" --force "${NB_PARAMS[@]}"
fi
# -- (c) accelerate launch of one short adapter training (needs notebook 02's encoders) -----------------
if has_stage train; then
    if [ ! -f "$WORK/results/checkpoints/movielens/sasrec/config.json" ]; then
        stage recommenders "${LIMITS[0]}" "$PY" -m recinterp.reproduce --preset smoke --results "$WORK/results" --only 01 02 "${NB_PARAMS[@]}"
    fi
    stage accelerate_train "${LIMITS[1]}" "$PY" -m accelerate.commands.launch --num_processes 1 --num_machines 1 \
        --mixed_precision no --dynamo_backend no -m recinterp.tasks residual --dataset movielens --encoder sasrec \
        --preset smoke --device $DEV --checkpoint-dir "$WORK/results/checkpoints" --out "$WORK/accelerate_run" \
        --steps $TRAIN_STEPS
fi

# -- (d) the curve: wait for it (it stops itself in time) --------------------------------------------
if [ -n "$CURVE_PID" ]; then
    wait "$CURVE_PID"
    read -r rc t_end < "$WORK/curve.rc" 2>/dev/null || { rc=1; t_end=$(date +%s); }
    cp "$WORK/curve/curve.csv" "$WORK/curve/curve.png" "$OUT_DIR/" 2>> "$LOG" || true
    finished curve "$rc" $(( t_end - CURVE_T0 )) "$left"  # its own time, not the wait for the other stages
fi

# -- pack: everything but weights, in one archive beside the summary ------------------------------------
tar -czf "$OUT_DIR/results.tar.gz" -C "$WORK" --exclude='*.pt' --exclude='*.safetensors' . 2>> "$LOG" || true
write_summary
log "done in $(( $(date +%s) - T_START )) s: $OUT_DIR"
cat "$OUT_DIR/summary.json"
fail=0
for k in "${!STATUS[@]}"; do [ "${STATUS[$k]}" = ok ] || fail=1; done
exit $fail
