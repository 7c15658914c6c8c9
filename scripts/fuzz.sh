#!/usr/bin/env bash
# Build every cargo-fuzz target in fuzz/ and run each in turn (never two at once) for a fixed
# time, then print one summary line per target. See docs/fuzzing.md.
#
#     scripts/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]     default: 600 s, every target
#     FUZZ_BUILD_ONLY=1 scripts/fuzz.sh                     build, do not run
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a compiler that takes the unstable
# sanitizer flags cargo-fuzz passes: the nightly toolchain when rustup has it, else the default
# toolchain with RUSTC_BOOTSTRAP=1 (the stable compiler then accepts -Z flags; its ASan runtime
# ships with it). FUZZ_TOOLCHAIN=NAME picks a toolchain by name. Each run starts from fuzz/corpus/TARGET (kept between runs,
# not committed) plus the committed seeds in fuzz/seeds/TARGET; its full libFuzzer log goes to
# fuzz/logs/TARGET.log and a crashing input to fuzz/artifacts/TARGET/. Exits 1 if any target
# found a crash, leak, timeout or out-of-memory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs="${1:-600}"
[[ $# -gt 0 ]] && shift

say() { printf '==> %s\n' "$*" >&2; }

if ! cargo fuzz --version >/dev/null 2>&1; then
    say "cargo-fuzz is missing: cargo install cargo-fuzz --locked"
    exit 2
fi

toolchain="${FUZZ_TOOLCHAIN:-nightly}"
if rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    fuzz=(cargo "+$toolchain" fuzz)
else
    # A machine may have only the stable toolchain and no way to fetch another.
    say "no $toolchain toolchain: using the default one with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

# The fuzz crate has its own target dir (fuzz/target): a CARGO_TARGET_DIR meant for the main
# crate would mix sanitizer-instrumented and plain builds.
unset CARGO_TARGET_DIR

say "${fuzz[*]} build"
"${fuzz[@]}" build
[[ "${FUZZ_BUILD_ONLY:-0}" == 1 ]] && exit 0

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list)
fi

mkdir -p fuzz/logs
summary=()
failed=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t"
    log="fuzz/logs/$t.log"
    say "fuzzing $t for ${secs}s (log: $log)"
    status=0
    # -rss_limit_mb: a huge allocation on hostile input is a bug too; -timeout: one input
    # that takes 10 s is a hang.
    "${fuzz[@]}" run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$log" 2>&1 || status=$?
    # The last status line looks like: #N  DONE  cov: C ft: F corp: U/SIZE ... exec/s: E rss: R
    last="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    cov="$(grep -oE 'cov: [0-9]+' <<<"$last" | cut -d' ' -f2 || true)"
    ft="$(grep -oE 'ft: [0-9]+' <<<"$last" | cut -d' ' -f2 || true)"
    corp="$(find "fuzz/corpus/$t" -type f | wc -l)"
    verdict="ok"
    if [[ $status -ne 0 ]]; then
        verdict="FAILED (exit $status; see $log and fuzz/artifacts/$t/)"
        failed=1
    fi
    summary+=("$(printf '%-16s %12s execs %8s/s  cov %6s  ft %7s  corpus %6s  %s' \
        "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corp" "$verdict")")
done

say "summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
