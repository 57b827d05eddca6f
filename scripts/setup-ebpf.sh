#!/usr/bin/env bash
# Install what building tcpeek's eBPF classifier needs on Debian 12 (run as root).
#
# Idempotent and fast when already done: every step checks first.
#   1. Debian's rustc-web, which ships a prebuilt `core` for bpfel-unknown-none
#      (the rustup nightly here has no rust-src, so `-Z build-std` is impossible),
#      linked into rustup as the `debian-bpf` toolchain;
#   2. bpf-linker 0.13.0, built against the libLLVM 22 that the rustup stable
#      toolchain already ships (no extra packages), falling back to Debian's
#      llvm-22 packages if that fails.
# See shared/ebpf-toolchain.md for why this route.
set -euo pipefail

BPF_LINKER_VERSION=0.13.0
# Stable, not mktemp: bpf-linker's rpath points into this directory.
LLVM_DIR=/opt/tcpeek-llvm

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
LOG_TAG=setup-ebpf

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (apt-get install)"; exit 1
fi

# --- 1. Debian's rustc-web with core for the bpf target --------------------
pkgs=(rustc-web cargo-web libstd-rust-web-dev-bpf)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    step "installing ${missing[*]}" apt_install "${missing[@]}"
else
    log "packages present: ${pkgs[*]}"
fi

if ! rustup toolchain list | grep -q '^debian-bpf'; then
    step "linking rustup toolchain debian-bpf -> /usr" rustup toolchain link debian-bpf /usr
else
    log "rustup toolchain debian-bpf present"
fi

# --- 2. bpf-linker ---------------------------------------------------------
have_linker() {
    command -v bpf-linker >/dev/null 2>&1 &&
        bpf-linker --version 2>/dev/null | grep -q "$BPF_LINKER_VERSION"
}

if have_linker; then
    log "bpf-linker $BPF_LINKER_VERSION present"
    exit 0
fi

install_with_rustup_llvm() {
    local so sysroot
    sysroot=$(rustc +stable --print sysroot)
    so=$(ls "$sysroot"/lib/libLLVM.so.* 2>/dev/null | head -n1)
    if [ -z "$so" ]; then
        log "no libLLVM.so.* in the rustup stable toolchain"; return 1
    fi
    so=$(readlink -f "$so")
    mkdir -p "$LLVM_DIR/lib"
    ln -sfn "$so" "$LLVM_DIR/lib/libLLVM.so"
    ln -sfn "$so" "$LLVM_DIR/lib/$(basename "$so")"
    step "building bpf-linker against $so (a few minutes)" \
        env LLVM_PREFIX="$LLVM_DIR" cargo +stable install --locked --force bpf-linker \
        --version "$BPF_LINKER_VERSION" --no-default-features --features llvm-22
}

install_with_debian_llvm() {
    log "falling back to Debian's llvm-22"
    step "installing llvm-22" apt_install llvm-22-dev libclang-22-dev libpolly-22-dev
    step "building bpf-linker against Debian's llvm-22 (a few minutes)" \
        env LLVM_PREFIX=/usr/lib/llvm-22 cargo +stable install --locked --force bpf-linker \
        --version "$BPF_LINKER_VERSION" --no-default-features --features llvm-22
}

install_with_rustup_llvm || install_with_debian_llvm
have_linker || { log "bpf-linker did not install"; exit 1; }
log "done: $(bpf-linker --version)"
