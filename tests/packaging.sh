#!/usr/bin/env bash
# The packaging checks, run by tests/run.sh after cargo test, as root (the
# .deb is installed with dpkg -i): the static binaries are static and
# work; the .deb holds what it should, installs, and its daemon takes a
# message; the installed systemd units pass systemd-analyze verify. The
# package is purged again at the end unless it was installed before.
# Prints "packaging: N passed, N failed" last.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
ok() { echo "ok: $1"; passed=$((passed + 1)); }
bad() { echo "FAILED: $1" >&2; failed=$((failed + 1)); }
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
  echo "packaging: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

work=$(mktemp -d)
daemons=()
cleanup() {
  for pid in "${daemons[@]}"; do kill "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

# Start $1 (ringlogd) on runtime dir $2 with --daemonize; echo its pid.
start_daemon() {
  local bin=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  "$bin" --no-kmsg --runtime-dir "$dir" --daemonize --pidfile "$dir/pid" "$@" || return 1
  cat "$dir/pid"
}

# Whether logread $2 reads a line matching $3 from runtime dir $1 within
# 10 s.
read_back() {
  local dir=$1 logread=$2 pattern=$3 i
  for i in $(seq 100); do
    "$logread" --socket "$dir/memlogdq.sock" | grep -q "$pattern" && return 0
    sleep 0.1
  done
  return 1
}

# A message through logger into runtime dir $1, read back with logread $2.
round_trip() {
  local dir=$1 logread=$2 tag=$3
  logger -u "$dir/log" -t "$tag" "hello from $tag" || return 1
  read_back "$dir" "$logread" ";$tag;hello from $tag\$"
}

# logwrite runs echo with its output sent into runtime dir $1.
logwrite_round_trip() {
  "$bin/logwrite" --socket "$1/linuxkit-external-logging.sock" -n lw echo via-logwrite >/dev/null || return 1
  read_back "$1" "$bin/logread" ';lw.out;via-logwrite$'
}

# --- the .deb (static binaries inside) ------------------------------------
start=$(date +%s)
if ! deb=$(packaging/deb/build.sh); then
  bad "packaging/deb/build.sh builds the .deb"
  finish
fi
ok "packaging/deb/build.sh built $deb in $(($(date +%s) - start)) s"
target=$(rustc -vV | sed -n 's/^host: //p')
bin=target/$target/release

# --- the static binaries --------------------------------------------------
for b in ringlogd logread logwrite; do
  check "$b has no program interpreter (static)" \
    bash -c "! readelf -l '$bin/$b' | grep -q 'program interpreter'"
  check "$b needs no shared library" bash -c "! readelf -d '$bin/$b' | grep -q NEEDED"
  echo "size: $b $(stat -c %s "$bin/$b") bytes"
done
if pid=$(start_daemon "$bin/ringlogd" "$work/static"); then
  daemons+=("$pid")
  check "the static ringlogd takes a message the static logread reads back" \
    round_trip "$work/static" "$bin/logread" static-test
  check "the static logwrite logs a command's output" logwrite_round_trip "$work/static"
  kill "$pid"
else
  bad "the static ringlogd starts"
fi

# --- what the .deb holds ---------------------------------------------------
contents=$(dpkg-deb -c "$deb" | awk '{ print $6 }')
for f in ./usr/sbin/ringlogd ./usr/bin/logread ./usr/bin/logwrite \
  ./etc/ringlogd/ringlogd.toml \
  ./usr/share/man/man8/ringlogd.8.gz ./usr/share/man/man1/logread.1.gz ./usr/share/man/man1/logwrite.1.gz \
  ./usr/share/bash-completion/completions/ringlogd ./usr/share/zsh/vendor-completions/_logread \
  ./usr/share/fish/vendor_completions.d/logwrite.fish \
  ./usr/lib/systemd/system/ringlogd.service ./usr/lib/systemd/system/ringlogd.socket \
  ./usr/lib/systemd/system/ringlogd-query.socket ./usr/lib/systemd/system/ringlogd-intake.socket \
  ./usr/lib/systemd/system/ringlogd-net.socket ./usr/share/doc/ringlogd/examples/ringlogd-syslog.conf \
  ./usr/share/doc/ringlogd/examples/ringlogd-syslog-socket.conf; do
  check "the .deb holds $f" grep -qx -- "$f" <<<"$contents"
done
check "the configuration file is a conffile" \
  bash -c "dpkg-deb -I '$deb' conffiles | grep -qx /etc/ringlogd/ringlogd.toml"

# --- dpkg -i, and the installed daemon ------------------------------------
was_installed=no
dpkg-query -W -f='${Status}' ringlogd 2>/dev/null | grep -q 'install ok installed' && was_installed=yes
start=$(date +%s%N)
if dpkg -i "$deb" >"$work/dpkg.log" 2>&1; then
  ok "dpkg -i installed the package in $((($(date +%s%N) - start) / 1000000)) ms"
else
  cat "$work/dpkg.log" >&2
  bad "dpkg -i installs the package"
  finish
fi
check "the installed configuration file is valid" \
  bash -c "/usr/sbin/ringlogd --config /etc/ringlogd/ringlogd.toml --check-config >/dev/null"
if pid=$(start_daemon /usr/sbin/ringlogd "$work/installed" --config /etc/ringlogd/ringlogd.toml); then
  daemons+=("$pid")
  check "the installed ringlogd takes a message the installed logread reads back" \
    round_trip "$work/installed" /usr/bin/logread deb-test
  kill "$pid"
else
  bad "the installed ringlogd starts"
fi
wants=/etc/systemd/system
check "the service and its three sockets are enabled, the network socket is not" \
  bash -c "[ -L $wants/multi-user.target.wants/ringlogd.service ] && [ -L $wants/sockets.target.wants/ringlogd.socket ] \
    && [ -L $wants/sockets.target.wants/ringlogd-query.socket ] && [ -L $wants/sockets.target.wants/ringlogd-intake.socket ] \
    && [ ! -e $wants/sockets.target.wants/ringlogd-net.socket ]"
check "the man pages are registered with the package" \
  bash -c "dpkg-query -L ringlogd | grep -qx /usr/share/man/man8/ringlogd.8.gz"

# --- systemd-analyze verify on the installed units ------------------------
# Any output is a finding: verify exits 0 on unknown keys, only warning.
# The second run is docs/install.md's "in place of rsyslog" set-up, in a
# unit directory of its own: the drop-ins for ringlogd.service and
# syslog.socket.
units=$work/units
mkdir -p "$units/ringlogd.service.d" "$units/syslog.socket.d"
cp /usr/share/doc/ringlogd/examples/ringlogd-syslog.conf "$units/ringlogd.service.d/syslog.conf"
cp /usr/share/doc/ringlogd/examples/ringlogd-syslog-socket.conf "$units/syslog.socket.d/ringlogd.conf"
verify() {
  local out status
  out=$(SYSTEMD_UNIT_PATH="$1:" systemd-analyze verify --man=no "${@:2}" 2>&1)
  status=$?
  [ -n "$out" ] && echo "$out" >&2
  [ "$status" -eq 0 ] && [ -z "$out" ]
}
check "systemd-analyze verify: the installed service and socket units" \
  verify /usr/lib/systemd/system ringlogd.service ringlogd.socket ringlogd-query.socket \
  ringlogd-intake.socket ringlogd-net.socket
check "systemd-analyze verify: ringlogd as the syslog daemon, with the two drop-ins" \
  verify "$units" ringlogd.service syslog.socket

# --- dpkg --purge ----------------------------------------------------------
if [ "$was_installed" = no ]; then
  check "dpkg --purge removes the package" bash -c "dpkg --purge ringlogd >'$work/purge.log' 2>&1"
  check "nothing is left: binary, configuration, enabled units" \
    bash -c "[ ! -e /usr/sbin/ringlogd ] && [ ! -e /etc/ringlogd/ringlogd.toml ] \
      && [ ! -e $wants/multi-user.target.wants/ringlogd.service ] && [ ! -e $wants/sockets.target.wants/ringlogd-query.socket ]"
fi
finish
