#!/usr/bin/env bash
# Everything tcpeek needs on a fresh Debian 12 machine (run as root):
# libpcap headers to build, the eBPF toolchain (scripts/setup-ebpf.sh), and
# what the privileged tests use (iproute2 for namespaces, nftables to make
# packets go missing, tcpdump to record a run for replay; Prometheus and
# promtool for the metrics tests; systemd-analyze and man for the
# packaging tests).
#
# Idempotent: each step checks first, so it is cheap to run before every
# build or test (the xtask commands do).
set -euo pipefail

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
LOG_TAG=setup

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (apt-get install)"; exit 1
fi

pkgs=(libpcap-dev tcpdump nftables iproute2 pkg-config systemd man-db)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}" apt_install "${missing[@]}"
else
    log "packages present: ${pkgs[*]}"
fi

# Prometheus without its recommends (node-exporter and its collectors).
# Nothing is started here: the tests start their own server.
if ! dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q 'install ok installed'; then
    step "installing prometheus" apt_install --no-install-recommends prometheus
else
    log "prometheus present"
fi

exec "$(dirname "$0")/setup-ebpf.sh"
