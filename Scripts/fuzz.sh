#!/usr/bin/env bash
# libFuzzer harnesses for WOW's parsers (docs/testing.md, "Fuzzing"). Builds Fuzz/ (a package of its own, with
# -sanitize=fuzzer,address on every Swift module) when needed, then:
#
#   Scripts/fuzz.sh list                    # the targets, one line each
#   Scripts/fuzz.sh TARGET SECONDS [FLAGS]  # fuzz one target; extra arguments go to libFuzzer (-jobs=, -max_len=, ...)
#   Scripts/fuzz.sh all SECONDS             # every target in turn, SECONDS each (what CI runs)
#   Scripts/fuzz.sh TARGET FILE...          # run these inputs once (reproduce a finding)
#   Scripts/fuzz.sh merge TARGET            # add the inputs of the working corpus that add coverage to Fuzz/Corpus/TARGET
#   Scripts/fuzz.sh seeds                   # write every target's seeds to Fuzz/Corpus/TARGET/seed-*
#   Scripts/fuzz.sh build                   # only build
#
# A run reads Fuzz/Corpus/TARGET (kept in the repository) and writes what it finds to a working corpus
# ($WORK/corpus/TARGET), so the repository is not changed. Exit status: 0 when no target found anything; else
# nonzero, with the reproducer's path printed (crashes, failed invariants, leaks, timeouts of 10 s per input,
# running out of memory).
#
# Environment: WOW_FUZZ_BUILD (scratch path, default Fuzz/.build), WOW_FUZZ_CONFIG (release, the default, or
# debug: builds faster, runs slower), WOW_FUZZ_WORK (corpora, artifacts and logs, default $WOW_FUZZ_BUILD/work),
# WOW_FUZZ_JOBS (parallel build jobs, default 1), WOW_FUZZ_VERBOSE=1 (show libFuzzer's output as it runs
# instead of only in the log).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${WOW_FUZZ_BUILD:-$ROOT/Fuzz/.build}
WORK=${WOW_FUZZ_WORK:-$BUILD/work}
CORPUS=$ROOT/Fuzz/Corpus
CONFIG=${WOW_FUZZ_CONFIG:-release}
BIN=$BUILD/$CONFIG/wow-fuzz

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

build() {
    # Every Swift module is instrumented (coverage and AddressSanitizer) and testable (the harnesses reach
    # internal types of Transports). C modules (BoringSSL, libyaml) are not: only Swift code guides the fuzzer.
    swift build -c "$CONFIG" -j "${WOW_FUZZ_JOBS:-1}" --package-path "$ROOT/Fuzz" --scratch-path "$BUILD" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -enable-testing </dev/null \
        > "$BUILD/build.log" 2>&1 || { tail -n 60 "$BUILD/build.log" >&2; echo "fuzz.sh: the build failed (log: $BUILD/build.log)" >&2; exit 1; }
}

# The harness binary, run so that findings are reported and nothing hangs: the Swift runtime's backtracer off
# (it would wait on the crashed process) and AddressSanitizer's symbolizer off (reports give addresses; the
# reproduce mode below symbolizes). Allocation stacks of 5 frames and a 32 MB quarantine make it about 30%
# faster than the defaults.
fuzz() {
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=${ASAN_OPTIONS:-symbolize=0:detect_leaks=1:malloc_context_size=5:quarantine_size_mb=32} \
        "$BIN" "$@"
}

targets() { WOW_FUZZ_TARGET=list fuzz | cut -f1; }

# run TARGET SECONDS [FLAGS...]: fuzzes; prints one summary line; returns libFuzzer's status.
run() {
    local target=$1 seconds=$2
    shift 2
    mkdir -p "$WORK/corpus/$target" "$WORK/artifacts" "$WORK/logs" "$CORPUS/$target"
    local log=$WORK/logs/$target.log
    local command=(fuzz -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
                   -artifact_prefix="$WORK/artifacts/$target-" "$@" "$WORK/corpus/$target" "$CORPUS/$target")
    local status
    if [[ "${WOW_FUZZ_VERBOSE:-0}" == 1 ]]; then
        WOW_FUZZ_TARGET=$target "${command[@]}" </dev/null 2>&1 | tee "$log"
        status=${PIPESTATUS[0]}
    else
        WOW_FUZZ_TARGET=$target "${command[@]}" </dev/null >"$log" 2>&1
        status=$?
    fi
    local runs rate corpus
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    corpus=$(find "$WORK/corpus/$target" "$CORPUS/$target" -type f | wc -l)
    if [[ $status -eq 0 ]]; then
        printf '%-16s ok      %12s executions in %ss (%s/s), corpus %s inputs\n' "$target" "${runs:-?}" "$seconds" "${rate:-?}" "$corpus"
    else
        [[ "${WOW_FUZZ_VERBOSE:-0}" == 1 ]] || tail -n 80 "$log"
        local artifact
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        printf '%-16s FAILED  (libFuzzer exit status %s after %s executions; log: %s)\n' "$target" "$status" "${runs:-?}" "$log"
        if [[ -n "$artifact" ]]; then
            echo "  reproducer: $artifact"
            echo "  reproduce:  Scripts/fuzz.sh $target $artifact"
        fi
    fi
    return "$status"
}

[[ $# -ge 1 ]] || usage
mkdir -p "$BUILD"
build
case "$1" in
    build)
        echo "built $BIN" ;;
    list)
        WOW_FUZZ_TARGET=list fuzz ;;
    seeds)
        WOW_FUZZ_WRITE_SEEDS=$CORPUS fuzz ;;
    merge)
        [[ $# -eq 2 ]] || usage
        mkdir -p "$WORK/corpus/$2" "$CORPUS/$2"
        WOW_FUZZ_TARGET=$2 fuzz -merge=1 -timeout=10 "$CORPUS/$2" "$WORK/corpus/$2" ;;
    all)
        [[ $# -eq 2 && "$2" =~ ^[0-9]+$ ]] || usage
        failed=()
        for target in $(targets); do
            run "$target" "$2" || failed+=("$target")
        done
        if ((${#failed[@]} > 0)); then
            echo "fuzz.sh: findings in ${failed[*]} (logs and reproducers under $WORK)"
            exit 1
        fi ;;
    *)
        [[ $# -ge 2 ]] || usage
        target=$1
        targets | grep -qx -- "$target" || { echo "fuzz.sh: no target '$target'; the targets are: $(targets | tr '\n' ' ')" >&2; exit 2; }
        if [[ "$2" =~ ^[0-9]+$ ]]; then
            seconds=$2
            shift 2
            run "$target" "$seconds" "$@"
        else
            # Reproduce: full AddressSanitizer reports, symbolized and demangled.
            shift
            symbolizer=$(dirname "$(command -v swift)")/llvm-symbolizer
            WOW_FUZZ_TARGET=$target ASAN_OPTIONS=${ASAN_OPTIONS:-symbolize=1:detect_leaks=1} ASAN_SYMBOLIZER_PATH=$symbolizer \
                fuzz "$@" 2>&1 | swift demangle --simplified
            exit "${PIPESTATUS[0]}"
        fi ;;
esac
