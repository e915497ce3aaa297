#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: install the programs
# the integration tests drive when they are missing, then run cargo test.
# Extra arguments go to cargo test (e.g. tests/run.sh --release).
set -euo pipefail
cd "$(dirname "$0")/.."

# tool -> Debian package that provides it
declare -A want=(
  [logger]=bsdutils
  [unshare]=util-linux
  [setpriv]=util-linux
  [prlimit]=util-linux
  [python3]=python3
  [socat]=socat
)
missing=()
for tool in "${!want[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${want[$tool]}")
done
if ((${#missing[@]})); then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "tests/run.sh: installing ${missing[*]}" >&2
  "${sudo[@]}" apt-get update
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends \
    $(printf '%s\n' "${missing[@]}" | sort -u)
fi

# One closing line with the totals over every test binary.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"
