//! The ringlogd daemon: parse the flags, run the event loop.

fn main() {
    let args = ringlogd::config::DaemonArgs::from_env();
    if let Err(e) = ringlogd::daemon::run(&args.settings()) {
        eprintln!("ringlogd: {e}");
        std::process::exit(1);
    }
}
