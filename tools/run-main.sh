#!/bin/bash
# The main job on a fresh Debian 12 machine (as root): install what is missing, build, compress
# the shipped real model into a .hcz container, inspect it, decompress it and measure it against
# the original, then compare every codec of this build on the same model.
#
#   bash tools/run-main.sh [MODEL.safetensors]
#
# MODEL defaults to tests/data/ppocr-rec-subset.safetensors (cut from the PaddleOCR v4
# recognizer; NOTICE beside it). Results go to results/: model.hcz, report.html (open it in a
# browser), report.json, info.txt, model-decoded.safetensors, eval-CODEC.txt/.json, the same
# model through an escalating pipeline (model-pipeline.hcz, report-pipeline.html),
# bench-CODEC.json and summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=tools/deps.sh
. tools/deps.sh

# The codec of the container the main job writes.
MAIN_CODEC=nf4
# The codecs the main job compares; codecs this build does not know are reported and skipped.
# A new codec adds its spec here.
CODECS="f32 fp16 bf16 int8 nf4 ternary seedlm:4bit seedlm:3bit vptq:2bit vptq:3bit vptq:4bit hyper:ergodic hyper:poly"
# The codecs also timed on the synthetic 4096 x 4096 matrix (the others take minutes to compress
# it; bench/ measures them).
BENCH_CODECS="fp16 bf16 int8 nf4 ternary"

model=${1:-tests/data/ppocr-rec-subset.safetensors}
build='build-run/main'
out=results
start=$(date +%s)

# shellcheck disable=SC2086  # a word list
hc_install_deps $HC_DEPS_BUILD || exit 1
mkdir -p build-run
hc_setup "$build" --buildtype=release -Dtests=false -Ddocs=disabled >"$build.setup.log" 2>&1 ||
    { cat "$build.setup.log"; echo "run-main: configure failed" >&2; exit 1; }
ninja -C "$build" || { echo "run-main: build failed" >&2; exit 1; }
hc=$build/tools/hypercomp
mkdir -p "$out"

# A codec is known when a tiny bench accepts its spec (exit 2 is a spec the build rejects).
known=() skipped=()
for c in $CODECS; do
    "$hc" bench --codec "$c" --rows 8 --cols 64 --repeat 1 >/dev/null 2>&1
    if [ $? -eq 2 ]; then skipped+=("$c"); else known+=("$c"); fi
done
echo "run-main: codecs ${known[*]}${skipped:+ (not in this build: ${skipped[*]})}"

# A top-level field of the JSON file $f (the totals, never a per-tensor value).
field() { awk -v key="$1" -f tools/json-field.awk "$f"; }
# num WIDTH.PRECISION CONVERSION VALUE: a number formatted, anything else (null) as it is.
num() {
    case $3 in
    '' | *[!0-9eE.+-]*) printf "%${1%.*}s" "${3:-?}" ;;
    *) printf "%${1}${2}" "$3" ;;
    esac
}

failed=()
: >"$out/summary.txt"
have_eval=1
if ! "$hc" eval --help >/dev/null 2>&1; then
    have_eval=0
    echo "run-main: this build has no 'hypercomp eval' command; only the synthetic bench runs" | tee -a "$out/summary.txt" >&2
    failed+=("eval-missing")
elif [ ! -f "$model" ]; then
    have_eval=0
    echo "run-main: model $model not found" | tee -a "$out/summary.txt" >&2
    failed+=("model-missing")
fi

# The main job proper: the model into a container, its listing, back to safetensors, and the
# container measured against the original.
if [ "$have_eval" -eq 1 ]; then
    echo "run-main: hypercomp compress $model -o $out/model.hcz --codec $MAIN_CODEC"
    if "$hc" compress "$model" -o "$out/model.hcz" --codec "$MAIN_CODEC" --report "$out/report.html" \
        --json "$out/report.json" &&
        "$hc" info "$out/model.hcz" >"$out/info.txt" &&
        "$hc" decompress "$out/model.hcz" -o "$out/model-decoded.safetensors" &&
        "$hc" eval "$out/model.hcz" --original "$model" >"$out/eval-container.txt"; then
        head -n 12 "$out/info.txt"
        tail -n 2 "$out/eval-container.txt" | tee -a "$out/summary.txt"
        echo "run-main: report: $(pwd)/$out/report.html" | tee -a "$out/summary.txt"
    else
        echo "run-main: the compress/info/decompress/eval chain failed" >&2
        failed+=("container")
    fi
    # The same model through a pipeline: the smallest stage whose error is at most 0.12 per tensor.
    pipe=(--pipeline escalate --stage seedlm:4bit --stage nf4 --stage int8 --gate 'rel_rmse<=0.12')
    echo "run-main: hypercomp compress $model -o $out/model-pipeline.hcz ${pipe[*]}"
    if "$hc" compress "$model" -o "$out/model-pipeline.hcz" "${pipe[@]}" --report "$out/report-pipeline.html" \
        --json "$out/report-pipeline.json" -q &&
        "$hc" eval "$out/model-pipeline.hcz" --original "$model" >"$out/eval-pipeline.txt"; then
        echo "pipeline (${pipe[*]}):" | tee -a "$out/summary.txt"
        tail -n 2 "$out/eval-pipeline.txt" | tee -a "$out/summary.txt"
    else
        echo "run-main: the pipeline compress/eval failed" >&2
        failed+=("pipeline")
    fi
    echo | tee -a "$out/summary.txt"
fi

printf '%-14s %10s %12s %12s    %s\n' codec bpw rel_rmse snr_db "model: $model" | tee -a "$out/summary.txt"
for c in "${known[@]}"; do
    if [ "$have_eval" -eq 1 ]; then
        if "$hc" eval "$model" --codec "$c" >"$out/eval-$c.txt" 2>&1 &&
            "$hc" eval "$model" --codec "$c" --json >"$out/eval-$c.json" 2>>"$out/eval-$c.txt"; then
            f=$out/eval-$c.json
            printf '%-14s %s %s %s\n' "$c" "$(num 10.4 f "$(field bpw)")" "$(num 12.6 g "$(field rel_rmse)")" \
                "$(num 12.2 f "$(field snr_db)")" | tee -a "$out/summary.txt"
        else
            echo "run-main: eval --codec $c failed; see $out/eval-$c.txt" >&2
            failed+=("eval-$c")
        fi
    fi
done

# The synthetic benchmark (the default 4096 x 4096 Gaussian, one thread): speed relative to BLAS sgemv.
printf '\n%-14s %10s %12s %12s %12s %10s    %s\n' codec bpw rel_rmse matvec_ms sgemv_ms speedup \
    "bench: 4096 x 4096 gauss, 1 thread" | tee -a "$out/summary.txt"
for c in $BENCH_CODECS; do
    case " ${known[*]} " in *" $c "*) ;; *) continue ;; esac
    if "$hc" bench --codec "$c" --threads 1 --json >"$out/bench-$c.json" 2>"$out/bench-$c.err"; then
        f=$out/bench-$c.json
        printf '%-14s %s %s %s %s %s\n' "$c" "$(num 10.4 f "$(field bpw)")" "$(num 12.6 g "$(field rel_rmse)")" \
            "$(num 12.4 f "$(field matvec_ms)")" "$(num 12.4 f "$(field sgemv_ms)")" \
            "$(num 10.3 f "$(field matvec_speedup)")" | tee -a "$out/summary.txt"
        rm -f "$out/bench-$c.err"
    else
        echo "run-main: bench --codec $c failed; see $out/bench-$c.err" >&2
        failed+=("bench-$c")
    fi
done

echo
echo "run-main: results in $(pwd)/$out/ (report.html, report-pipeline.html, summary.txt, model.hcz, model-pipeline.hcz, info.txt, eval-CODEC.txt/.json, bench-CODEC.json); $(($(date +%s) - start)) s"
if [ ${#failed[@]} -ne 0 ]; then
    echo "run-main: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "run-main: OK"
