//! The ringlogd daemon: read the flags and the configuration file, then run
//! the event loop (or, with --check-config, print the settings and exit).

use ringlogd::config::{show, Loader};

/// Report `e` (one line per mistake, e.g. every mistake of a configuration
/// file) and exit 1.
fn fail(e: String) -> ! {
    for line in e.lines() {
        eprintln!("ringlogd: {line}");
    }
    std::process::exit(1);
}

fn main() {
    let loader = Loader::from_env();
    let loaded = loader.load().unwrap_or_else(|e| fail(e));
    if loader.check_only() {
        let s = &loaded.settings;
        // Names that do not resolve would stop the daemon at start.
        if let Err(e) =
            ringlogd::privileges::Identity::resolve(s.user.as_deref(), s.group.as_deref())
        {
            fail(e);
        }
        print!("{}", show::effective(&loaded));
        return;
    }
    if loader.reexec_only() {
        match ringlogd::lifecycle::reexec::request(&loaded.settings) {
            Ok(msg) => {
                println!("{msg}");
                return;
            }
            Err(e) => fail(e),
        }
    }
    if let Err(e) = ringlogd::daemon::run(loaded.settings, Some(loader)) {
        fail(e);
    }
}
