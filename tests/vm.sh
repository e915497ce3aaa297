#!/usr/bin/env bash
# The VM tests: ringlogd in real boots under QEMU, where the rest of the
# suite can only imitate them (docs/vm-tests.md says what each proves).
#   tier 1: a LinuxKit-style boot from an initramfs (busybox, the static
#           binaries), ringlogd -daemonize started by /init first of all;
#           then a second boot that loads the first one's --snapshot from a
#           disk.
#   tier 2: Debian 12 with systemd, the .deb installed with dpkg -i: socket
#           activation, journald forwarding, the fd store, reload, purge.
# Installs what it needs with apt (as root), downloads Debian's kernel
# package without installing it, builds the static binaries and the .deb
# (packaging/deb/build.sh, a no-op when the suite built them already),
# boots, and prints one line per check and "vm: N passed, M failed" last.
# Exits 0 only when every check passes.
#
# Usage: tests/vm.sh [--tier 1|2] [--kvm] [--keep]
#   --tier N  run one tier only
#   --kvm     try KVM (-accel kvm -cpu host) instead of QEMU's software CPU;
#             off by default: on a host that is itself a PVM guest, KVM
#             runs no Debian kernel
#   --keep    keep target/vm/run (images, serial logs) for a look
set -uo pipefail
cd "$(dirname "$0")/.."

tiers="1 2"
accel=(-accel tcg,thread=multi -cpu max)
keep=no
while [ $# -gt 0 ]; do
  case "$1" in
    --tier) tiers=$2; shift ;;
    --kvm) accel=(-accel kvm -cpu host) ;;
    --keep) keep=yes ;;
    *) echo "usage: tests/vm.sh [--tier 1|2] [--kvm] [--keep]" >&2; exit 2 ;;
  esac
  shift
done

# apt, mmdebstrap and a root filesystem's owners need root. Under CI that
# is a failure; elsewhere the tests are skipped, saying why.
if [ "$(id -u)" -ne 0 ]; then
  if [ -n "${CI:-}" ]; then
    echo "vm: 0 passed, 1 failed (tests/vm.sh needs root)"
    exit 1
  fi
  echo "tests/vm.sh: skipped: needs root (apt-get, mmdebstrap, the image's file owners)" >&2
  exit 0
fi

# Downloads and the Debian root filesystem stay in target/vm between runs;
# each run builds its images in target/vm/run.
cache=$PWD/target/vm
run=$cache/run
rm -rf "$run"
mkdir -p "$cache" "$run"
table=$run/checks.txt
times=()
: >"$table"
log() { echo "vm: $*" >&2; }
now() { date +%s; }
# One check: tier, PASS|FAIL, name, detail.
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$table"; }
# The checks tests/vm/check.py judged, under tier $1.
judge() {
  local tier=$1
  shift
  python3 tests/vm/check.py "$@" | while IFS=$'\t' read -r verdict name detail; do
    record "$tier" "$verdict" "$name" "$detail"
  done
}

finish() {
  echo
  printf '%-6s %-5s %s\n' TIER RESULT CHECK
  awk -F'\t' '{ printf "%-6s %-5s %s%s\n", $1, $2, $3, ($4 == "" ? "" : "  [" $4 "]") }' "$table"
  local passed failed
  passed=$(awk -F'\t' '$2 == "PASS"' "$table" | wc -l)
  failed=$(awk -F'\t' '$2 != "PASS"' "$table" | wc -l)
  [ "$keep" = yes ] || rm -rf "$run"
  ((${#times[@]} == 0)) || printf 'vm: time: %s\n' "${times[@]}"
  echo "vm: $passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit
}

# --- what the boots need ---------------------------------------------------
start=$(now)
log "apt-get update"
if ! apt-get update -qq >"$run/apt.log" 2>&1; then
  cat "$run/apt.log" >&2
  record setup FAIL "apt-get update" ""
  finish
fi
want=(qemu-system-x86 cpio mmdebstrap kmod e2fsprogs)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >>"$run/apt.log" 2>&1; then
    cat "$run/apt.log" >&2
    record setup FAIL "apt-get install ${missing[*]}" ""
    finish
  fi
fi

# A package unpacked (dpkg -x) into $cache/NAME, not installed: Debian's
# kernel, and busybox-static (which would replace the busybox package the
# rest of the suite uses).
unpacked() {
  local pkg=$1 dir=$cache/$1
  if [ ! -e "$dir/.unpacked" ]; then
    rm -rf "$dir" "$cache/download"
    mkdir -p "$dir" "$cache/download"
    (cd "$cache/download" && apt-get download -qq "$pkg" 2>/dev/null) &&
      dpkg -x "$cache"/download/*.deb "$dir" && touch "$dir/.unpacked" || return 1
    rm -rf "$cache/download"
  fi
  echo "$dir"
}
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
kernel=$(unpacked "$kpkg") && busybox=$(unpacked busybox-static) || {
  record setup FAIL "download $kpkg and busybox-static" ""
  finish
}
kver=${kpkg#linux-image-}
vmlinuz=$kernel/boot/vmlinuz-$kver
depmod -b "$kernel" "$kver"

# The static binaries and the .deb, as tests/packaging.sh builds them:
# built again only when absent or older than what they are built from.
newest_deb() { ls -t target/debian/ringlogd_*.deb target/*/debian/ringlogd_*.deb 2>/dev/null | head -n 1; }
deb=$(newest_deb)
if [ -z "$deb" ] || [ -n "$(find src conf packaging Cargo.toml Cargo.lock README.md -newer "$deb" -print -quit)" ]; then
  log "building the static binaries and the .deb (packaging/deb/build.sh)"
  if ! packaging/deb/build.sh >/dev/null 2>"$run/build.log"; then
    cat "$run/build.log" >&2
    record setup FAIL "packaging/deb/build.sh" ""
    finish
  fi
  deb=$(newest_deb)
fi
deb=$PWD/$deb
bin=$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release
# The raw /dev/kmsg reader the ring is compared with, built again when
# its source changed.
if [ ! "$cache/kmsg_dump" -nt tests/vm/kmsg_dump.rs ]; then
  rustc --edition 2021 -O -C target-feature=+crt-static -C strip=symbols \
    -o "$cache/kmsg_dump" tests/vm/kmsg_dump.rs || {
    record setup FAIL "build tests/vm/kmsg_dump.rs" ""
    finish
  }
fi
cp "$cache/kmsg_dump" "$run/kmsg_dump"
times=("setup (apt, $kpkg, busybox-static, build): $(($(now) - start)) s")

# An initramfs in $1 (a directory): busybox and its applets, the modules
# that reach an ext4 disk on virtio (their load order in
# lib/modules/load-order), /init from $2, and the files after $3 in
# /usr/bin. Writes $3 (newc, gzip -1).
initramfs() {
  local root=$1 init=$2 out=$3 m
  shift 3
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,var,persist,lib/modules,newroot}
  ln -sfn ../run "$root/var/run"
  cp "$busybox/bin/busybox" "$root/bin/busybox"
  for a in $("$root/bin/busybox" --list-full); do
    [ -e "$root/$a" ] || ln -s /bin/busybox "$root/$a"
  done
  : >"$root/lib/modules/load-order"
  for m in $(for mod in virtio_pci virtio_blk ext4; do
    modprobe -d "$kernel" -S "$kver" --show-depends "$mod"
  done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'); do
    cp "$m" "$root/lib/modules/"
    basename "$m" >>"$root/lib/modules/load-order"
  done
  install -m 0755 "$init" "$root/init"
  [ $# -eq 0 ] || cp "$@" "$root/usr/bin/"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
}

# Boot: qemu NAME TIMEOUT_S INITRD APPEND [QEMU ARGS...]. The console goes
# to $run/NAME.console, the second serial port (results) to
# $run/NAME.results.
qemu() {
  local name=$1 limit=$2 initrd=$3 append=$4
  shift 4
  timeout "$limit" qemu-system-x86_64 "${accel[@]}" -nographic -nodefaults -net none -no-reboot \
    -serial "file:$run/$name.console" -serial "file:$run/$name.results" \
    -bios /usr/share/qemu/qboot.rom -kernel "$vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet $append" "$@" </dev/null >"$run/$name.qemu" 2>&1
  local status=$?
  if [ "$status" -ne 0 ]; then
    if [ "$status" -eq 124 ]; then log "$name: no poweroff within $limit s"; else log "$name: qemu exit status $status"; fi
    log "$name: the last lines of its console, then of qemu's output:"
    tail -n 25 "$run/$name.console" "$run/$name.qemu" >&2
  fi
  return "$status"
}

# --- tier 1: LinuxKit-style ------------------------------------------------
tier1() {
  local t0 root=$run/tier1
  t0=$(now)
  initramfs "$root" tests/vm/tier1-init "$run/tier1.cpio.gz" \
    "$bin/ringlogd" "$bin/logread" "$bin/logwrite" "$run/kmsg_dump"
  mkfs.ext4 -q -F "$run/tier1.ext4" 64M >/dev/null
  local disk=(-drive "file=$run/tier1.ext4,if=virtio,format=raw,cache=unsafe")
  for boot in 1 2; do
    log "tier 1: boot $boot"
    qemu "tier1-boot$boot" 120 "$run/tier1.cpio.gz" "vmtest=$boot" -m 512 -smp 1 "${disk[@]}" ||
      record tier1 FAIL "boot $boot powers off by itself" "see $run/tier1-boot$boot.console (--keep)"
  done
  judge tier1 tier1 "$run/tier1-boot1.results" "$run/tier1-boot2.results"
  times+=("tier 1 (initramfs, two boots): $(($(now) - t0)) s")
}

# --- tier 2: Debian 12 with systemd ---------------------------------------
tier2() {
  local t0 root=$run/tier2-root sources
  t0=$(now)
  if [ ! -f "$cache/bookworm.tar" ]; then
    log "tier 2: mmdebstrap"
    rm -rf "$cache/bookworm.tar.part"
    sources=/etc/apt/sources.list.d/debian.sources
    [ -e "$sources" ] || sources=/etc/apt/sources.list
    if ! mmdebstrap --quiet --format=tar --variant=important --include=systemd-sysv,udev,util-linux,python3,bsdutils \
      bookworm "$cache/bookworm.tar.part" "$sources" 2>"$run/mmdebstrap.log"; then
      cat "$run/mmdebstrap.log" >&2
      record tier2 FAIL "mmdebstrap a Debian 12 root filesystem" ""
      return
    fi
    mv "$cache/bookworm.tar.part" "$cache/bookworm.tar"
  fi
  mkdir -p "$root"
  if ! tar -C "$root" -xf "$cache/bookworm.tar"; then
    rm -rf "$cache/bookworm.tar"
    record tier2 FAIL "unpack the Debian 12 root filesystem" "$cache/bookworm.tar (removed, made again next run)"
    return
  fi
  # The test: a unit that runs tests/vm/tier2-check once the machine is up;
  # the gettys masked so the test owns the console.
  mkdir -p "$root/root/vmtest"
  cp "$deb" "$root/root/vmtest/ringlogd.deb"
  cp "$run/kmsg_dump" tests/vm/tier2-check "$root/root/vmtest/"
  cat >"$root/etc/systemd/system/vmtest.service" <<'EOF'
[Unit]
Description=ringlogd VM test (tests/vm.sh, tier 2)
After=multi-user.target

[Service]
Type=exec
ExecStart=/root/vmtest/tier2-check
StandardOutput=journal+console
StandardError=journal+console
EOF
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
  ln -sf ../vmtest.service "$root/etc/systemd/system/multi-user.target.wants/vmtest.service"
  for u in serial-getty@ttyS0.service getty@tty1.service apt-daily.timer apt-daily-upgrade.timer \
    man-db.timer e2scrub_all.timer fstrim.timer; do
    ln -sf /dev/null "$root/etc/systemd/system/$u"
  done
  echo vmtest >"$root/etc/hostname"
  mkfs.ext4 -q -F -d "$root" "$run/tier2.ext4" 1536M >/dev/null
  rm -rf "$root"
  initramfs "$run/tier2-initramfs" tests/vm/tier2-init "$run/tier2.cpio.gz"
  log "tier 2: boot"
  qemu tier2 400 "$run/tier2.cpio.gz" "root=/dev/vda rw" -m 1024 -smp 2 \
    -drive "file=$run/tier2.ext4,if=virtio,format=raw,cache=unsafe" ||
    record tier2 FAIL "the Debian machine powers off by itself" "see $run/tier2.console (--keep)"
  judge tier2 tier2 "$run/tier2.results"
  times+=("tier 2 (root filesystem, image, boot): $(($(now) - t0)) s")
}

for t in $tiers; do
  "tier$t"
done
finish
