#!/bin/sh
# Build the Debian package: static binaries (so the .deb installs on any
# Debian or Ubuntu release), the man pages and shell completions generated
# from the clap definitions, then `cargo deb` around them. Prints the path
# of the .deb. Needs cargo-deb (cargo install cargo-deb).
set -eu
cd "$(dirname "$0")/../.."
target=$(rustc -vV | sed -n 's/^host: //p')
# --target keeps +crt-static off build scripts and proc macros. No debug
# information: these are the binaries that get installed.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
	CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
	cargo build --release --locked --target "$target" --bins >&2
cargo run --quiet --locked --example gen_docs -- target/assets >/dev/null
cargo deb --no-build --locked --target "$target" "$@" | tail -n 1
