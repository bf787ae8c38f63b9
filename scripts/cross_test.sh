#!/usr/bin/env bash
# Run the test suites of thrml and thrml-cli on other CPUs, under QEMU user-mode emulation.
# A manual check, not part of CI.
#
#   scripts/cross_test.sh [aarch64|x86|all]        (default: all)
#
# aarch64: the tests built for aarch64-unknown-linux-gnu, run by qemu-aarch64 (NEON kernels).
# x86:     the x86-64 tests, run by `qemu-x86_64 -cpu MODEL` for each model in X86_CPUS
#          (QEMU's TCG has no AVX-512, so the AVX-512 kernels never run here):
#            $hsw       Haswell, AVX2 + FMA + AES-NI: the AVX2 kernels ("avx2+aes-ni")
#            $hsw,-aes  AVX2 + FMA, no AES: the portable kernel's AVX2 build ("avx2")
#            Nehalem    no AVX: the portable kernel's baseline build ("baseline")
#          $hsw (below) is Haswell-v4 less the features TCG lacks: QEMU's warnings about
#          them would land in the stderr that the CLI tests check.
#          `-cpu max` ("avx2+vaes") fails the VAES tests on QEMU 7.2, whose 256-bit VAESENC
#          gets the upper 128-bit lane wrong (target/i386/ops_sse.h); use it on QEMU >= 8.1.
# The `thrml` binary that the CLI tests start is replaced by a wrapper that runs it under
# the same QEMU command. Doc tests are not run.
#
# Needs: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
#        rustup target add aarch64-unknown-linux-gnu
# On 2 cores: about 5 minutes per build, 5-20 minutes per configuration (Nehalem slowest).
# Environment: CROSS_TARGET_DIR (default target/cross), X86_CPUS (space-separated models),
# TEST_ARGS (passed to every test binary, e.g. "--skip NAME"), RUST_TEST_THREADS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
[[ $what =~ ^(aarch64|x86|all)$ ]] || { echo "usage: $0 [aarch64|x86|all]" >&2; exit 2; }
dir=${CROSS_TARGET_DIR:-target/cross}
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-2}
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
failed=()

hsw=Haswell-v4,-pcid,-x2apic,-tsc-deadline,-invpcid,-spec-ctrl

# Build the tests for target $1; print the test executables (the bins are not in deps/).
build() {
  cargo test --release --locked --no-run --target "$1" --target-dir "$dir" -p thrml -p thrml-cli \
    --message-format=json-render-diagnostics |
    grep -o '"executable":"[^"]*/deps/[^"]*"' | cut -d'"' -f4
}

# Run test executables $2... under the command $1, the CLI binary (release dir $rel) too.
run_all() {
  local qemu=$1 t
  shift
  printf '#!/bin/sh\nexec %s "$0.real" "$@"\n' "$qemu" >"$rel/thrml"
  chmod +x "$rel/thrml"
  for t in "$@"; do
    echo "== $qemu $(basename "$t")"
    # shellcheck disable=SC2086 # $qemu and $TEST_ARGS are word lists
    $qemu "$t" ${TEST_ARGS:-} || failed+=("$qemu $(basename "$t")")
  done
}

# Build for target $1, move the CLI binary aside for the wrapper; sets $rel and $tests.
prepare() {
  local out
  out=$(build "$1")
  mapfile -t tests <<<"$out"
  rel=$dir/$1/release
  mv -f "$rel/thrml" "$rel/thrml.real"
}

if [[ $what == aarch64 || $what == all ]]; then
  prepare aarch64-unknown-linux-gnu
  run_all "qemu-aarch64 -L /usr/aarch64-linux-gnu" "${tests[@]}"
fi
if [[ $what == x86 || $what == all ]]; then
  prepare x86_64-unknown-linux-gnu
  for cpu in ${X86_CPUS:-$hsw $hsw,-aes Nehalem}; do
    qemu-x86_64 -cpu "$cpu" "$rel/thrml.real" bench -q --workload potts --chains 16 \
      --threads 1 --repeats 1 --sweeps 1 2>/dev/null | grep -o 'SIMD level .*' || true
    run_all "qemu-x86_64 -cpu $cpu" "${tests[@]}"
  done
fi
if ((${#failed[@]})); then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "all passed"
