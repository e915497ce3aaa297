#!/usr/bin/env bash
# The benchmark: installs the peers it compares against when missing
# (busybox, rsyslog), builds in release mode and prints the table.
# Run as root for the busybox figures (a private mount namespace) and for
# both net.unix.max_dgram_qlen settings (restored afterwards).
# Arguments go to the benchmark (--quick: a smoke run, not a measurement),
# but for --write FILE (below).
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

# --write FILE: also write the table into FILE, between the lines
# <!-- bench:begin --> and <!-- bench:end -->, stamped with the machine and
# the date (PERFORMANCE.md holds the last full run this way). With
# --bytes-only (the corpus bytes-per-entry table alone), between
# <!-- bench-bytes:begin --> and <!-- bench-bytes:end --> instead; with
# --other-logs DIR (logs that are not the corpus), between
# <!-- bench-other:begin --> and <!-- bench-other:end -->.
write=
region=bench
args=()
while (($#)); do
  case "$1" in
    --write)
      [ $# -ge 2 ] || { echo "tests/bench.sh: --write needs a file" >&2; exit 2; }
      write=$2
      shift 2
      ;;
    --bytes-only)
      region=bench-bytes
      args+=("$1")
      shift
      ;;
    --other-logs)
      region=bench-other
      args+=("$1")
      shift
      ;;
    *)
      args+=("$1")
      shift
      ;;
  esac
done
if [ -n "$write" ] && ! { grep -qx "<!-- $region:begin -->" "$write" && grep -qx "<!-- $region:end -->" "$write"; }; then
  echo "tests/bench.sh: $write has no <!-- $region:begin --> and <!-- $region:end --> lines to write between" >&2
  exit 2
fi

# The benchmark is benches/bench.rs: cargo bench builds it and the daemon
# in release mode and runs it (adding --bench to its arguments).
cargo bench --no-run --bench bench
if [ -z "$write" ]; then
  exec cargo bench --quiet --bench bench -- "${args[@]}"
fi

out=$(mktemp)
trap 'rm -f "$out" "$out.region" "$out.new"' EXIT
cargo bench --quiet --bench bench -- "${args[@]}" | tee "$out"
# The stamp: what ran, where and when, so that a reader can tell whether
# the figures are comparable with another run.
who=root
[ "$(id -u)" -eq 0 ] || who="a user other than root"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
os=$(. /etc/os-release && echo "$PRETTY_NAME")
{
  echo "<!-- $region:begin -->"
  echo "Written by \`tests/bench.sh${args[*]:+ ${args[*]}} --write\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
  echo "as $who, on $(nproc) cores ($cpu), Linux $(uname -r), $os, $(rustc --version | cut -d' ' -f1-2):"
  echo
  echo '```text'
  cat "$out"
  echo '```'
  echo "<!-- $region:end -->"
} >"$out.region"
awk -v region="$out.region" -v name="$region" '
  $0 == "<!-- " name ":begin -->" { while ((getline line < region) > 0) print line; skip = 1; next }
  $0 == "<!-- " name ":end -->" { skip = 0; next }
  !skip { print }
' "$write" >"$out.new"
cat "$out.new" >"$write"
echo "tests/bench.sh: wrote the table into $write" >&2
