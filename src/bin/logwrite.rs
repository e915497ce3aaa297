//! logwrite: run a command, logging its output through ringlogd's fd intake.

fn main() {
    let args = ringlogd::client::logwrite::LogwriteArgs::parse_args(std::env::args_os());
    std::process::exit(ringlogd::client::logwrite::run(&args));
}
