#!/usr/bin/env bash
# Runs every herald test: installs the real peers the black-box tests drive (sipp, dig, ...),
# then format and lint checks, then the whole workspace's tests. Needs root for apt-get on a
# fresh machine; packages already present are not reinstalled.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential pkg-config sip-tester bind9-dnsutils bind9-utils curl
    # The SIPE acceptance test (tests/sipe/run.sh): a real Lync client driven headless.
    finch pidgin-sipe libpurple-bin dbus tmux libxml2-dev iproute2 util-linux
    # The SIMPLE client of the presence black-box tests (presence::simple_client).
    baresip-core)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is missing: install Rust 1.95 (rustup) first" >&2; exit 1; }

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Black-box tests start `herald serve` from this build.
cargo build --locked -p herald
cargo test --workspace --locked
