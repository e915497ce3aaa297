//! logread: dump or follow ringlogd's ring.

fn main() {
    let args = ringlogd::client::logread::LogreadArgs::parse_args(std::env::args_os());
    std::process::exit(ringlogd::client::logread::run(&args));
}
