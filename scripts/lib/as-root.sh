# shellcheck shell=bash
# Sourced by scripts/test.sh and scripts/bench-check.sh; not a command of its own.
#
#     as_root SCRIPT REASON [ARG...]
#
# As root: returns 0 at once. Not root, with sudo installed: says on stderr why SCRIPT wants
# root (REASON) and re-executes it with its ARGs as
#
#     sudo -E env "PATH=$PATH" ICEPROBE_AS_ROOT_REEXEC=1 SCRIPT ARG...
#
# so the environment (ICEPROBE_REQUIRE_NETNS, CARGO_*, ...) and PATH with it are kept and
# cargo is still found; plain sudo would reset PATH to its secure_path. This never returns:
# the script's exit status is sudo's. Not root and no sudo, or still not root after one such
# re-execution (ICEPROBE_AS_ROOT_REEXEC is set): returns 1, and the caller decides whether
# to go on without root or to stop.
as_root() {
    local script=$1 reason=$2
    shift 2
    [[ $EUID -eq 0 ]] && return 0
    if [[ -z "${ICEPROBE_AS_ROOT_REEXEC:-}" ]] && command -v sudo >/dev/null 2>&1; then
        # An absolute path: sudo keeps the working directory, but the caller may not.
        script="$(cd "$(dirname "$script")" && pwd)/${script##*/}"
        printf '==> %s: not root, re-running through sudo: %s\n' "${script##*/}" "$reason" >&2
        exec sudo -E env "PATH=$PATH" ICEPROBE_AS_ROOT_REEXEC=1 "$script" "$@"
    fi
    return 1
}
