#!/bin/sh
# Builds the libFuzzer targets with clang and runs each one for SECONDS
# (default 10) over its seed corpus and its saved findings, printing a TAP
# line per target and "N passed, N failed". Exit status 1 when a target
# crashed or broke an invariant; its input is kept under BUILD/fuzz-run/.
#
#     fuzz/run.sh [SECONDS [TARGET...]]
#
# FUZZ_BUILD names the build directory (default build-fuzz in the source
# tree); FUZZ_JOBS runs that many targets at once (default 1). Inputs the
# fuzzer finds go to BUILD/fuzz-run/corpus/, never into the tree.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
seconds=${1:-10}
[ $# -gt 0 ] && shift
targets=${*:-kpsaid handle premaster kdf map keyinput}
build=${FUZZ_BUILD:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-1}
run=$build/fuzz-run

case $seconds in
'' | *[!0-9]*)
    echo "usage: fuzz/run.sh [SECONDS [TARGET...]]" >&2
    exit 2
    ;;
esac

# The longest input worth trying: past each parser's limits.
max_len() {
    case $1 in
    handle) echo 256 ;;
    kpsaid | premaster) echo 1024 ;;
    kdf) echo 4096 ;;
    map | keyinput) echo 8192 ;;
    esac
}

build_targets() {
    if [ ! -f "$build/build.ninja" ]; then
        CC=${CC:-clang} meson setup "$build" "$root" -Dfuzz=true \
            >"$run.setup.log" 2>&1 || { cat "$run.setup.log" >&2; return 1; }
    else
        meson configure "$build" -Dfuzz=true >/dev/null || return 1
    fi
    set --
    for t in $targets; do
        set -- "$@" "fuzz_$t"
    done
    meson compile -C "$build" "$@" >"$run.build.log" 2>&1 ||
        { tail -40 "$run.build.log" >&2; return 1; }
}

# One target; leaves its result line in $run/$1.result.
fuzz_one() {
    t=$1
    log=$run/$t.log
    mkdir -p "$run/corpus/$t" "$run/crash"
    set -- "$run/corpus/$t" "$here/corpus/$t"
    [ -d "$here/findings/$t" ] && set -- "$@" "$here/findings/$t"
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
        nice "$build/fuzz/fuzz_$t" -max_total_time="$seconds" \
        -max_len="$(max_len "$t")" -timeout=30 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$run/crash/$t-" \
        "$@" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | sed 's/cov: //')
    summary="fuzz_$t: ${execs:-0} executions, ${rate:-0}/s, ${cov:-?} edges"
    if [ $rc -eq 0 ]; then
        echo "ok $summary" >"$run/$t.result"
    else
        # shellcheck disable=SC2012 # libFuzzer names them by a hash
        crash=$(ls -t "$run/crash/$t-"* 2>/dev/null | head -n 1)
        why=$(grep -m 1 -E \
            'invariant broken|ERROR: [A-Za-z]+Sanitizer|runtime error' "$log")
        {
            echo "not ok $summary; input ${crash:-(none)}"
            echo "# ${why:-exit status $rc, see $log}"
        } >"$run/$t.result"
    fi
}

rm -rf "$run"
mkdir -p "$run"
if ! build_targets; then
    echo "Bail out! the fuzz targets do not build (see $run.build.log)"
    echo "0 passed, 1 failed"
    exit 1
fi

# shellcheck disable=SC2086 # a list of words
set -- $targets
echo "1..$#"
running=0
for t in $targets; do
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait

n=0 passed=0 failed=0
for t in $targets; do
    n=$((n + 1))
    line=$(head -n 1 "$run/$t.result")
    case $line in
    ok*) passed=$((passed + 1)) ;;
    *) failed=$((failed + 1)) ;;
    esac
    sed "1s/^\(not ok\|ok\) /\1 $n - /" "$run/$t.result"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
