#!/usr/bin/env bash
# The benchmark: installs the peers it compares against when missing
# (busybox, rsyslog), builds in release mode and prints the table.
# Run as root for the busybox figures (a private mount namespace) and for
# both net.unix.max_dgram_qlen settings (restored afterwards).
# Arguments go to the benchmark (--quick: a smoke run, not a measurement).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
missing=()
command -v busybox >/dev/null 2>&1 || missing+=(busybox)
if ! command -v rsyslogd >/dev/null 2>&1 && [ ! -x /usr/sbin/rsyslogd ] && [ -z "${RSYSLOGD:-}" ]; then
  missing+=(rsyslog)
fi
if ((${#missing[@]})); then
  echo "tests/bench.sh: installing ${missing[*]}" >&2
  if ! { "${sudo[@]}" apt-get update && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"; }; then
    echo "tests/bench.sh: could not install ${missing[*]}: their rows will say so" >&2
  fi
fi

cargo build --release --bins --examples
exec target/release/examples/bench "$@"
