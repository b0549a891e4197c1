#!/usr/bin/env bash
# Fuzzes knode's parsers with cargo-fuzz (libFuzzer): static pod manifests, the
# KubeletConfiguration file, the command line, resolv.conf, $(VAR) expansion, env
# files (fileKeyRef), and what clients send the kubelet's servers (log/exec query
# strings, /logs/ paths, CRI log lines). hack/test.sh runs every target briefly.
# Each target runs for a bounded time; a crash leaves its input under
# fuzz/artifacts/<target>/ and makes the script exit non-zero.
#
# Usage: hack/fuzz.sh [seconds-per-target] [target...]
#   hack/fuzz.sh            every target for 60 s
#   hack/fuzz.sh 300 flags  one target for 5 minutes
# Reproduce a crash: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> artifacts/<target>/<file>
# Needs cargo-fuzz (hack/test.sh installs it into $KNODE_CACHE/cargo-tools); only a stable toolchain is needed,
# RUSTC_BOOTSTRAP=1 lets it use the nightly-only sanitizer flags.
set -euo pipefail

# shellcheck source=hack/lib/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/env.sh"
cd "$KNODE_REPO_ROOT/fuzz"

seconds=${1:-60}
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=(decode_manifest kubelet_config flags resolv_conf env_expand env_file http_queries probe_redirect allocation_checkpoint pull_secret join_inputs); fi

export PATH="$KNODE_CACHE/cargo-tools/bin:$PATH"
command -v cargo-fuzz >/dev/null || { echo "==> ERROR: cargo-fuzz missing: cargo install --locked --root $KNODE_CACHE/cargo-tools cargo-fuzz" >&2; exit 1; }
# Its own target dir: sanitizer flags rebuild every crate, and the main build is not locked.
export RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="${KNODE_FUZZ_TARGET_DIR:-$KNODE_CACHE/target-fuzz}"
export PROTOC="${PROTOC:-/usr/bin/protoc}"

# Seed corpora (copied, so the fuzzer's own corpus never writes into examples/).
seed() {
    local target=$1; shift
    local dir=corpus/$target
    mkdir -p "$dir"
    local f
    for f in "$@"; do [[ -f $f ]] && cp -n "$f" "$dir/seed-$(basename "$f")"; done
    return 0
}
seed decode_manifest ../examples/static-pods/* seeds/decode_manifest/*
seed kubelet_config ../crates/kubelet-config/tests/fixtures/seeds/*.yaml seeds/kubelet_config/*
seed flags seeds/flags/*
seed resolv_conf /etc/resolv.conf seeds/resolv_conf/*
seed env_expand seeds/env_expand/*
seed env_file seeds/env_file/*
seed http_queries seeds/http_queries/*
seed probe_redirect seeds/probe_redirect/*
seed allocation_checkpoint seeds/allocation_checkpoint/*
seed pull_secret seeds/pull_secret/*
seed join_inputs seeds/join_inputs/*

failed=()
for t in "${targets[@]}"; do
    echo "==> fuzzing $t for ${seconds}s"
    mkdir -p "artifacts/$t"
    if ! cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -rss_limit_mb=4096 -max_len=65536 \
        -print_final_stats=1 >"artifacts/$t.log" 2>&1; then
        failed+=("$t")
        echo "==> $t FAILED: see fuzz/artifacts/$t.log and fuzz/artifacts/$t/"
        grep -m5 -E "panicked|ERROR: libFuzzer|Test unit written" "artifacts/$t.log" || true
    else
        grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "artifacts/$t.log" | tr '\n' ' '
        echo
    fi
done
echo "fuzz targets: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "==> crashes in: ${failed[*]}"
    exit 1
fi
echo "==> no crash in ${targets[*]}"
