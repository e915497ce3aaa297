#!/usr/bin/env bash
# Fuzz one target (or all, one after the other) for SECONDS each, starting
# from the committed seeds; the corpus grows in fuzz/corpus/TARGET (not
# committed), crashes land in fuzz/artifacts/TARGET.
#   fuzz/run.sh TARGET [SECONDS]     e.g. fuzz/run.sh syslog 600
#   fuzz/run.sh all [SECONDS]
# cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain use them.
set -euo pipefail
cd "$(dirname "$0")"
targets=("$1")
[ "$1" = all ] && mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
secs=${2:-600}
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$secs" -print_final_stats=1 -max_len=65536
done
