#!/bin/sh
# Build the Debian package: static binaries (so the .deb installs on any
# Debian or Ubuntu release), the man pages and shell completions generated
# from the clap definitions, then `cargo deb` around them. Prints the sizes
# of the binaries and the package on stderr (the figures docs/install.md
# shows, checked against a real run), and the path of the .deb on stdout.
# Needs cargo-deb (cargo install cargo-deb).
set -eu
cd "$(dirname "$0")/../.."
target=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps +crt-static off build scripts and proc macros. No debug
# information: these are the binaries that get installed.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
	CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
	cargo build --release --locked --target "$target" --bins >&2
cargo run --quiet --locked --example gen_docs -- target/assets >/dev/null
deb=$(cargo deb --no-build --locked --target "$target" "$@" | tail -n 1)
deb=${deb#"$PWD/"}

# "NAME 6.6 MiB (6912345 bytes)"
size() {
	stat -c %s "$2" | awk -v name="$1" '{ printf "%s %.1f MiB (%d bytes)", name, $1 / 1048576, $1 }'
}
bin="target/$target/release"
echo "$(size ringlogd "$bin/ringlogd"), $(size logread "$bin/logread"), $(size logwrite "$bin/logwrite")" >&2
size "$(basename "$deb")" "$deb" >&2
echo >&2
echo "$deb"
