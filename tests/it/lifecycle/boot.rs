//! A LinuxKit-style boot: init starts the log daemon with -daemonize, passes
//! it the output fds of onboot containers (run one after another) and of
//! services (run together), and then someone runs `logread -F`. Every line
//! must show, in order, under the right name.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn a_linuxkit_style_boot_shows_every_line_in_order_under_its_name() {
    let (onboot, services, lines) = (3, 4, 50);
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let fifos = dir.path().join("fifos");
    std::fs::create_dir(&fifos).unwrap();

    // init: the log daemon first, ready when the command returns.
    run_ok(
        ringlogd_command()
            .arg("--runtime-dir")
            .arg(&run)
            .arg("-daemonize")
            .stdin(Stdio::null()),
    );
    let query = run.join("memlogdq.sock");
    let daemon = Detached(pid_with_arg(&run));

    // init: onboot containers, then services.
    run_ok(
        Command::new(require("python3"))
            .arg(FAKE_INIT)
            .arg("boot")
            .arg(run.join("linuxkit-external-logging.sock"))
            .arg(&fifos)
            .arg(onboot.to_string())
            .arg(services.to_string())
            .arg(lines.to_string()),
    );

    // Someone logs in and runs logread -F.
    let mut logread = Command::new(LOGREAD)
        .arg("-socket")
        .arg(&query)
        .arg("-F")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = logread.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });

    let mut want: HashMap<String, Vec<String>> = HashMap::new();
    let programs = (0..onboot)
        .map(|i| (format!("boot{i}"), format!("onboot.boot{i}")))
        .chain((0..services).map(|i| (format!("svc{i}"), format!("svc{i}"))));
    for (program, source) in programs {
        for (stream, name) in [("out", format!("{source}.out")), ("err", source)] {
            want.insert(
                name,
                (0..lines)
                    .map(|j| format!("{program} {stream} {j}"))
                    .collect(),
            );
        }
    }
    let total: usize = want.values().map(Vec::len).sum();
    let mut got: HashMap<String, Vec<String>> = HashMap::new();
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while count < total {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("logread -F showed {count} of {total} lines: {got:#?}"));
        // TIME;SOURCE;MSG
        let mut parts = line.splitn(3, ';');
        let (_time, source, msg) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        if want.contains_key(source) {
            got.entry(source.to_owned())
                .or_default()
                .push(msg.to_owned());
            count += 1;
        } else {
            assert_eq!(source, "memlogd", "unexpected line {line:?}");
        }
    }
    assert_eq!(got, want);
    let _ = logread.kill();
    let _ = logread.wait();
    daemon.stop();
}
