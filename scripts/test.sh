#!/usr/bin/env bash
# The project's full check: formatting, clippy, then every test target, including the
# network-namespace integration tests (coturn behind real NATs), which need root:
#
#     scripts/test.sh [extra `cargo test` args, e.g. a test name filter]
#
# Run it as root, or as an ordinary user: then it re-runs itself through
# `sudo -E env "PATH=$PATH"` (scripts/lib/as-root.sh), so cargo is still found. An ordinary
# user without sudo gets a loud warning and everything that works without root: the netns
# tests skip (or fail, see below).
#
# Missing tools (ip, nft, turnserver) are installed with apt-get when running as root.
# ICEPROBE_REQUIRE_NETNS=1 turns a skipped netns test into a failure (CI sets it).
#
# Last, the cargo-fuzz targets in fuzz/ are built and each runs for a short smoke run
# (FUZZ_SMOKE_SECONDS, default 10) from its committed seeds; cargo-fuzz is installed from
# crates.io when missing. The long runs are scripts/fuzz.sh's job (docs/fuzzing.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/as-root.sh
source "$here/lib/as-root.sh"

say() { printf '==> %s\n' "$*" >&2; }

why="the integration tests create network namespaces, and missing tools (coturn, iproute2,"
why+=" nftables) are installed with apt-get"
if ! as_root "$here/test.sh" "$why" "$@"; then
    if [[ "${ICEPROBE_REQUIRE_NETNS:-0}" == 1 ]]; then
        fate="FAIL (ICEPROBE_REQUIRE_NETNS=1)"
    else
        fate="SKIP: their bodies do NOT run"
    fi
    say "################################################################################"
    how="no sudo to become root with"
    [[ -z "${ICEPROBE_AS_ROOT_REEXEC:-}" ]] || how="sudo did not make it root"
    say "!!! not root, and $how (scripts/lib/as-root.sh):"
    say "!!! the network-namespace / coturn integration tests will $fate"
    say "!!! running what works without root: fmt, clippy, the other tests, the fuzz smoke run"
    say "################################################################################"
fi

cd "$here/.."

export ICEPROBE_REQUIRE_NETNS="${ICEPROBE_REQUIRE_NETNS:-0}"
export DEBIAN_FRONTEND=noninteractive
# `sudo` may reset PATH to one without sbin; the tests look there too.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing_tools() {
    local tool
    for tool in ip nft turnserver turnutils_stunclient turnutils_natdiscovery timeout stdbuf dnsmasq prometheus promtool jq; do
        command -v "$tool" >/dev/null 2>&1 || printf '%s ' "$tool"
    done
}

install_tools() {
    local missing
    missing="$(missing_tools)"
    [[ -z "$missing" ]] && return 0
    if [[ $EUID -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        say "missing: $missing(not root or no apt-get: netns tests will skip or fail)"
        return 0
    fi
    say "installing coturn iproute2 nftables (missing: $missing)"
    apt-get update -q
    apt-get install -y -q --no-install-recommends coturn iproute2 nftables coreutils dnsmasq-base prometheus jq
}

# Debian/Ubuntu start coturn's system service on install; the tests start their own
# turnservers inside namespaces and want no stray one in the root namespace.
stop_coturn_service() {
    [[ $EUID -eq 0 ]] || return 0
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        systemctl stop coturn.service >/dev/null 2>&1 || true
        systemctl disable coturn.service >/dev/null 2>&1 || true
    elif command -v service >/dev/null 2>&1; then
        service coturn stop >/dev/null 2>&1 || true
    fi
}

# Namespaces named ipt-<pid>-… whose owning test process is gone (a crashed or killed run).
stale_namespaces() {
    command -v ip >/dev/null 2>&1 || return 0
    local name pid
    while read -r name _; do
        [[ "$name" == ipt-* ]] || continue
        pid="${name#ipt-}"
        pid="${pid%%-*}"
        [[ -d "/proc/$pid" ]] || printf '%s\n' "$name"
    done < <(ip netns list 2>/dev/null)
}

if ! command -v cargo >/dev/null 2>&1; then
    say "cargo not found in PATH ($PATH)"
    exit 1
fi

install_tools
stop_coturn_service

say "cargo fmt --check"
cargo fmt --all --check

say "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

say "cargo test --all-targets (ICEPROBE_REQUIRE_NETNS=$ICEPROBE_REQUIRE_NETNS)"
cargo test --all-targets "$@"

# The fuzz targets only compile on the fuzzer's toolchain, so `cargo test` above never builds
# them; building them here keeps them from rotting when a public API changes.
fuzz_smoke() {
    if ! cargo fuzz --version >/dev/null 2>&1; then
        say "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
        cargo install cargo-fuzz --version 0.13.2 --locked || true
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        if [[ "$ICEPROBE_REQUIRE_NETNS" == 1 ]]; then
            say "cargo-fuzz is missing and could not be installed: the fuzz targets are not built"
            exit 1
        fi
        say "!!! SKIPPED: cargo-fuzz is missing, the fuzz targets were NOT built (cargo install cargo-fuzz) !!!"
        return 0
    fi
    say "fuzz targets: build, then ${FUZZ_SMOKE_SECONDS:-10}s each (scripts/fuzz.sh)"
    scripts/fuzz.sh "${FUZZ_SMOKE_SECONDS:-10}"
}
fuzz_smoke

stale="$(stale_namespaces)"
if [[ -n "$stale" ]]; then
    say "test namespaces left behind by dead test processes:"
    mapfile -t names <<<"$stale"
    printf '    %s\n' "${names[@]}" >&2
    exit 1
fi
say "all checks passed"
