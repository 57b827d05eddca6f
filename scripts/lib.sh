# Shared by the set-up scripts (sourced, not run).
#
# `step WHAT CMD...` runs CMD with its output going to the set-up log
# (target/setup.log, or $TCPEEK_SETUP_LOG), prints one line for the step
# and its time, and prints the end of the log if it fails. The package
# manager's and cargo's progress stays out of a newcomer's way.

SETUP_LOG=${TCPEEK_SETUP_LOG:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/setup.log"}
mkdir -p "$(dirname "$SETUP_LOG")"

log() { printf '%s: %s\n' "${LOG_TAG:-setup}" "$*" >&2; }

step() {
    local what=$1 start rc=0
    shift
    start=$(date +%s)
    printf '%s: %s ... ' "${LOG_TAG:-setup}" "$what" >&2
    printf '\n=== %s: %s\n' "$(date -Is)" "$what" >>"$SETUP_LOG"
    "$@" >>"$SETUP_LOG" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf 'failed (exit %s); the end of %s:\n' "$rc" "$SETUP_LOG" >&2
        tail -n 40 "$SETUP_LOG" >&2
        return "$rc"
    fi
    printf 'done (%ss)\n' "$(($(date +%s) - start))" >&2
}

# apt-get install, quietly, with the answers a script needs.
apt_install() {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}
