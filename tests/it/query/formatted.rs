//! logread asks the daemon for the format it prints and copies the frames
//! out: the output is the same, byte for byte, as when logread formats the
//! daemon's JSON lines itself (which it still does for a reader in another
//! time zone, for colours, and for memlogd, which reads only the mode
//! byte), in every format, filtered or not, dumped, tailed or followed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::*;
use serde_json::Value;

const TEXT_FORMATS: [&str; 6] = ["memlogd", "short", "short-iso", "rfc5424", "rfc3164", "cat"];

/// The daemon's zone; a reader in it is answered in its format. A reader
/// in [`CLIENT_SIDE`], the same offset under another name, is answered in
/// JSON and formats it itself.
const DAEMON_ZONE: &str = "UTC0";
const CLIENT_SIDE: &str = "GMT0";

fn daemon_in_utc() -> Daemon {
    Daemon::start_under(&["env", &format!("TZ={DAEMON_ZONE}")], &[])
}

/// Entries with every kind of field and text the formats treat apart.
fn send_variety(d: &Daemon) {
    let sent: [&[u8]; 7] = [
        b"<13>Nov 21 23:40:10 plain[42]: a plain entry",
        b"<11>Nov 21 23:40:11 multi: first line\nsecond line\n\nfourth",
        b"<12>Nov 21 23:40:12 esc: bell\x07 escape\x1b[2J del\x7f c1\xc2\x9b tab\tend",
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 77 ID47 [exampleSDID@32473 eventSource=\"App\\\"li]cation\" iut=\"3\"] An application event",
        b"<14>1 2026-11-21T23:40:13.5+05:45 - - - - - nil fields, \xc3\xbcnic\xc3\xb6de \xe2\x9c\x93",
        b"<30>Nov 21 23:40:14 we ird[1 2]: a tag and a pid with spaces",
        b"<13>Nov 21 23:40:15 plain[42]: ",
    ];
    for m in sent {
        d.send(m);
    }
    d.send_many(40, |i| {
        format!("<13>Nov 21 23:40:16 bulk[7]: numbered entry {i:03}")
    });
    d.wait_for("every entry", |e| e.len() >= 48);
}

fn logread_in(d: &Daemon, zone: &str, args: &[&str]) -> Output {
    d.logread_command()
        .env("TZ", zone)
        .args(args)
        .output()
        .expect("run logread")
}

fn stdout_of(out: Output, what: &str) -> String {
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{what}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const OPTIONS: [&[&str]; 6] = [
    &[],
    &["-p", "warning"],
    &["-t", "multi"],
    &["-g", "escape|numbered entry 03"],
    &["-n", "4"],
    &["-n", "2", "-t", "plain"],
];

#[test]
fn every_text_format_reads_the_same_formatted_by_the_daemon_as_by_logread() {
    let d = daemon_in_utc();
    send_variety(&d);
    for format in TEXT_FORMATS {
        for options in OPTIONS {
            let args = [&["-o", format][..], options].concat();
            let what = format!("logread {}", args.join(" "));
            let daemon = stdout_of(logread_in(&d, DAEMON_ZONE, &args), &what);
            let logread = stdout_of(logread_in(&d, CLIENT_SIDE, &args), &what);
            assert!(!daemon.is_empty(), "{what}: nothing printed");
            assert_eq!(daemon, logread, "{what}");
        }
    }
}

/// A follower's stdout, line by line.
struct Following {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Following {
    fn start(d: &Daemon, zone: &str, args: &[&str]) -> Following {
        let mut child = d
            .logread_command()
            .env("TZ", zone)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run logread");
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Following { child, lines }
    }

    /// The next `n` lines, waiting up to 20 s for each.
    fn take(&self, n: usize) -> String {
        (0..n)
            .map(|i| {
                let line = self
                    .lines
                    .recv_timeout(Duration::from_secs(20))
                    .unwrap_or_else(|_| panic!("line {} of {n} did not come", i + 1));
                format!("{line}\n")
            })
            .collect()
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_dump_and_follow_reads_the_same_formatted_by_the_daemon_as_by_logread() {
    let d = daemon_in_utc();
    send_variety(&d);
    for format in TEXT_FORMATS {
        let args = ["-F", "-o", format];
        let dumped = stdout_of(logread_in(&d, DAEMON_ZONE, &["-o", format]), format);
        let held = dumped.lines().count();
        let daemon = Following::start(&d, DAEMON_ZONE, &args);
        let logread = Following::start(&d, CLIENT_SIDE, &args);
        assert_eq!(daemon.take(held), dumped, "-F -o {format}: the dump");
        assert_eq!(logread.take(held), dumped, "-F -o {format}: the dump");
        d.send(b"<11>Nov 21 23:40:20 later: one more\nline");
        let more = if matches!(format, "rfc5424" | "rfc3164") {
            1
        } else {
            2
        };
        let followed = daemon.take(more);
        assert!(followed.contains("one more"), "-F -o {format}: {followed}");
        assert_eq!(logread.take(more), followed, "-F -o {format}: followed");
    }
}

#[test]
fn a_reader_in_another_time_zone_reads_its_own_local_time() {
    let d = daemon_in_utc();
    say_plain(&d);
    let hour = |zone: &str| -> u32 {
        let text = stdout_of(logread_in(&d, zone, &["-o", "short", "-t", "plain"]), zone);
        // "Nov 21 23:40:10 host app[pid]: msg": the hour is the third field.
        let time = text.split_whitespace().nth(2).unwrap().to_owned();
        time[..2].parse().unwrap()
    };
    assert_eq!(hour("JST-9"), (hour(DAEMON_ZONE) + 9) % 24);
    assert_eq!(hour("EST5"), (hour(DAEMON_ZONE) + 24 - 5) % 24);
}

fn say_plain(d: &Daemon) {
    d.send(b"<13>Nov 21 23:40:10 plain[42]: a plain entry");
    d.wait_for("the entry", |e| e.iter().any(|v| v["app"] == "plain"));
}

/// logread reading from a stand-in daemon on `socket`, with `TZ` as given.
fn logread_from(socket: &std::path::Path, args: &[&str], tz: Option<&str>) -> Child {
    let mut c = std::process::Command::new(LOGREAD);
    c.arg("--socket").arg(socket).args(args);
    if let Some(tz) = tz {
        c.env("TZ", tz);
    }
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn logread_asks_for_its_format_after_the_mode_byte_and_copies_the_frames_out() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("q.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let reader = logread_from(&socket, &["-o", "short-iso"], Some("JST-9"));
    let mut conn = accept_client(&listener);
    let mut request = String::new();
    BufReader::new(&conn).read_line(&mut request).unwrap();
    let (mode, options) = request.split_at(1);
    assert_eq!(mode, "\0", "a dump's mode byte first: {request:?}");
    let options: Value = serde_json::from_str(options).unwrap();
    assert_eq!(options["format"], "short-iso", "{options}");
    assert_eq!(options["frames"], 1, "{options}");
    assert_eq!(options["tz"], "TZ=JST-9", "{options}");
    // Whatever the frames hold is printed as it is, and only that.
    let body = "not parsed\n  by logread\n";
    write!(conn, "ringlogd-frames short-iso\n{} 7\n{body}", body.len()).unwrap();
    drop(conn);
    let out = reader.wait_with_output().unwrap();
    assert_eq!(stdout_of(out, "logread -o short-iso"), body);
}

#[test]
fn logread_reads_memlogd_which_reads_only_the_mode_byte() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("memlogdq.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let reader = logread_from(&socket, &["-o", "memlogd"], None);
    let mut conn = accept_client(&listener);
    let mut mode = [0u8; 1];
    conn.read_exact(&mut mode).unwrap();
    assert_eq!(mode, [0]);
    // As memlogd does: answer the byte, and close with the rest unread
    // (the kernel tells logread the connection was reset).
    conn.write_all(
        b"{\"time\":\"2024-07-02T19:22:51.974497577Z\",\"source\":\"memlogd\",\"msg\":\"memlogd started\"}\n\
          {\"time\":\"2024-07-02T19:22:52Z\",\"source\":\"onboot.001\",\"msg\":\"two\"}\n",
    )
    .unwrap();
    drop(conn);
    let out = reader.wait_with_output().unwrap();
    assert_eq!(
        stdout_of(out, "logread against memlogd"),
        "2024-07-02T19:22:51.974497577Z;memlogd;memlogd started\n2024-07-02T19:22:52Z;onboot.001;two\n"
    );
}

#[test]
fn the_daemon_writes_structured_data_in_the_order_it_was_sent() {
    // The JSON line holds params by name, so a reader formatting from it
    // had them sorted; the daemon has the entry itself.
    let d = daemon_in_utc();
    d.send(b"<165>1 2026-11-21T23:40:10Z host app - - [x@1 zulu=\"1\" alpha=\"2\" zulu=\"3\"] sd");
    d.wait_for("the entry", |e| e.iter().any(|v| v["msg"] == "sd"));
    let text = stdout_of(
        logread_in(&d, DAEMON_ZONE, &["-o", "rfc5424", "-g", "^sd$"]),
        "rfc5424",
    );
    assert_eq!(
        text,
        "<165>1 2026-11-21T23:40:10Z host app - - [x@1 zulu=\"1\" alpha=\"2\" zulu=\"3\"] sd\n"
    );
}

#[test]
fn logread_asks_an_older_ringlogd_for_json_lines_when_it_knows_no_frames() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("memlogdq.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let reader = logread_from(&socket, &["-o", "cat", "-s", "onboot.*"], None);
    // A ringlogd from before framed answers refuses the key, as it
    // refuses any key it does not know.
    let mut line = String::new();
    let mut first = BufReader::new(accept_client(&listener));
    first.read_line(&mut line).unwrap();
    assert!(line.contains("\"frames\""), "{line}");
    first
        .get_mut()
        .write_all(b"{\"error\":\"unknown key \\\"frames\\\"\"}\n")
        .unwrap();
    drop(first);
    // Asked again without it, it answers JSON lines.
    let mut again = BufReader::new(accept_client(&listener));
    line.clear();
    again.read_line(&mut line).unwrap();
    assert!(
        !line.contains("frames") && line.contains("onboot"),
        "{line}"
    );
    again
        .get_mut()
        .write_all(
            b"{\"time\":\"2024-07-02T19:22:52Z\",\"source\":\"onboot.001\",\"msg\":\"two\"}\n",
        )
        .unwrap();
    drop(again);
    let out = reader.wait_with_output().unwrap();
    assert_eq!(stdout_of(out, "logread against an older ringlogd"), "two\n");
}
