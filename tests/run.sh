#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: install the programs
# the integration tests drive when they are missing, then run cargo test,
# the layering check (tests/layers.py), the benchmark's smoke run, the packaging checks (tests/packaging.sh:
# static binaries, the .deb built, installed with dpkg -i and purged, the
# systemd units verified) and the docs' blocks (tests/docblocks.py: every
# sh block of README.md and docs/ run as pasted, its output checked). Extra arguments go to cargo test (e.g.
# tests/run.sh --release).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)

# A program is there if it is on PATH or in an sbin directory (which a
# non-root PATH may lack).
have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}
installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# tool -> Debian package that provides it
declare -A want=(
  [logger]=bsdutils
  [unshare]=util-linux
  [setpriv]=util-linux
  [prlimit]=util-linux
  [python3]=python3
  [socat]=socat
  [curl]=curl
  [busybox]=busybox
  [openssl]=openssl
  [groff]=groff-base
  # The capture directory's files are read back with the real tools.
  [zstd]=zstd
  [jq]=jq
  # Prometheus and its promtool: the metrics tests scrape with both.
  [prometheus]=prometheus
  [promtool]=prometheus
  [readelf]=binutils
  # systemd-analyze only: installing the package starts nothing.
  [systemd-analyze]=systemd
)
missing=()
for tool in "${!want[@]}"; do
  have "$tool" || missing+=("${want[$tool]}")
done
# The journal routes' receiver lives off PATH, in systemd's directory.
if [ ! -x /lib/systemd/systemd-journal-remote ] && [ ! -x /usr/lib/systemd/systemd-journal-remote ]; then
  missing+=(systemd-journal-remote)
fi

# rsyslog and syslog-ng-core conflict in Debian, and the tests run both:
# one is installed with apt, the other unpacked (dpkg -x) into
# target/unpacked/PACKAGE, where the tests look for it, with the shared
# libraries it needs installed with apt. Whichever one the machine already
# has stays installed.
unpack=()
if ! have rsyslogd && [ ! -x target/unpacked/rsyslog/usr/sbin/rsyslogd ]; then
  if installed syslog-ng-core; then unpack+=(rsyslog); else missing+=(rsyslog); fi
fi
if ! have syslog-ng && [ ! -x target/unpacked/syslog-ng-core/usr/sbin/syslog-ng ]; then
  unpack+=(syslog-ng-core)
fi

# The route tests run rsyslog as a central server with RELP and TLS
# (gtls) inputs: modules in packages of their own. Installed with rsyslog,
# or unpacked beside it when rsyslog itself is unpacked.
for pkg in rsyslog-relp rsyslog-gnutls; do
  if [[ " ${unpack[*]} " == *" rsyslog "* ]] || [ -d target/unpacked/rsyslog ]; then
    [ -e "target/unpacked/rsyslog/.$pkg" ] || unpack+=("$pkg")
  elif ! installed "$pkg"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} + ${#unpack[@]})); then
  echo "tests/run.sh: installing ${missing[*]:-nothing}, unpacking ${unpack[*]:-nothing}" >&2
  "${sudo[@]}" apt-get update
fi
# The shared libraries of an unpacked package: its "Depends: lib..." lines
# (the first of a set of alternatives).
for pkg in "${unpack[@]}"; do
  missing+=($(apt-cache depends "$pkg" | awk '/^  Depends: lib/ { print $2 }'))
done
if ((${#missing[@]})); then
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends \
    $(printf '%s\n' "${missing[@]}" | sort -u)
fi
for pkg in "${unpack[@]}"; do
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download "$pkg")
  case "$pkg" in
    # rsyslog's module packages go into rsyslog's tree, beside its modules.
    rsyslog-*)
      mkdir -p target/unpacked/rsyslog
      dpkg -x "$tmp"/*.deb target/unpacked/rsyslog
      touch "target/unpacked/rsyslog/.$pkg"
      ;;
    *)
      rm -rf "target/unpacked/$pkg"
      mkdir -p "target/unpacked/$pkg"
      dpkg -x "$tmp"/*.deb "target/unpacked/$pkg"
      ;;
  esac
  rm -rf "$tmp"
done

# cargo-deb, which the packaging checks build the .deb with, from crates.io.
if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "tests/run.sh: installing cargo-deb" >&2
  cargo install cargo-deb --locked
fi

# One closing line with the totals over every test binary.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
# Every test binary runs even after one fails, so one run shows every
# failure.
cargo test --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The shape of src/ that ARCHITECTURE.md promises: rooms depend one way,
# none calls back into the daemon, no file grows past 900 lines.
python3 tests/layers.py 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
if [ "$status" -eq 0 ]; then
  # The benchmark (benches/bench.rs) in its smoke mode: it must run and
  # account for every message; its figures (debug build, small counts)
  # mean nothing.
  release=()
  case " $* " in *" --release "*) release=(--release) ;; esac
  cargo test "${release[@]}" --bench bench -- --quick
  status=$?
fi
if [ "$status" -eq 0 ]; then
  # Installs and purges the .deb, so it needs root.
  "${sudo[@]}" env "PATH=$PATH" tests/packaging.sh 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
fi
if [ "$status" -eq 0 ]; then
  # Every sh block of the docs, run as pasted and checked against the
  # output it shows (tests/docblocks.py). Needs the release build, and
  # root for the blocks that install the package and the binaries.
  cargo build --release --bins
  "${sudo[@]}" env "PATH=$PATH" python3 tests/docblocks.py 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
fi
set -e
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     /^packaging: [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
     /^layers: [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
     /^docs: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$/ { p += $2; f += $4; i += $6 }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, i }' "$log"
exit "$status"
