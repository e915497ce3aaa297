//! /dev/log with the clients that really write to it: util-linux logger in
//! every format, Python's SysLogHandler, glibc's syslog(3) in a private
//! mount namespace, socat, and raw datagrams nobody should send.

use std::process::Command;

use crate::support::*;
use serde_json::Value;

fn logger(d: &Daemon, args: &[&str]) -> std::process::Output {
    run_ok(
        Command::new(require("logger"))
            .arg("-u")
            .arg(&d.log)
            .args(args),
    )
}

/// A fresh daemon, `logger args… MSG` with a unique MSG made from
/// `label`, and the entry it became.
fn logged(label: &str, args: &[&str]) -> Value {
    let d = Daemon::start(&[]);
    let msg = unique(label);
    logger(&d, &[args, &[msg.as_str()]].concat());
    d.entry_with_msg(&msg)
}

#[test]
fn logger_default_local_format() {
    let e = logged("plain", &["-t", "mytag"]);
    assert_fields(
        &e,
        &[
            ("input", "syslog"),
            ("source", "mytag"),
            ("app", "mytag"),
            ("facility", "user"),
            ("severity", "notice"),
            ("host", hostname().as_str()),
        ],
    );
    assert!(e.get("pid").is_none(), "no -i, no pid: {e}");
    assert!(
        e["timestamp"].is_string(),
        "the message's own time is kept: {e}"
    );
    assert!(e["peer"]["pid"].as_u64().unwrap() > 0);
    assert_eq!(e["peer"]["uid"], unsafe_uid());
}

fn unsafe_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

#[test]
fn logger_with_pid_and_priority() {
    let e = logged("withpid", &["-i", "-p", "daemon.err", "-t", "svc"]);
    assert_fields(
        &e,
        &[("app", "svc"), ("facility", "daemon"), ("severity", "err")],
    );
    // logger -i writes its own pid, which the kernel confirms.
    assert_eq!(e["pid"].as_str().unwrap(), e["peer"]["pid"].to_string());
}

#[test]
fn a_pid_written_in_the_message_never_replaces_the_kernels() {
    // An unprivileged sender (root may hand the kernel any credentials):
    // logger --id=1 claims pid 1 in the text and in SCM_CREDENTIALS.
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start(&[]);
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let msg = unique("liar");
    let mut cmd = Command::new(require("setpriv"));
    if nix::unistd::getuid().is_root() {
        cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"]);
    }
    run_ok(
        cmd.arg(require("logger"))
            .arg("-u")
            .arg(&d.log)
            .args(["--id=1", "-t", "liar", &msg]),
    );
    let e = d.entry_with_msg(&msg);
    assert_eq!(e["pid"], "1", "PROCID is kept as written");
    assert_ne!(e["peer"]["pid"], 1, "peer is the kernel's word: {e}");
    if nix::unistd::getuid().is_root() {
        assert_eq!(e["peer"]["uid"], 65534);
        assert_eq!(e["peer"]["gid"], 65534);
    }
}

#[test]
fn logger_rfc3164_with_hostname() {
    let e = logged(
        "r3164",
        &["--rfc3164", "-t", "tag3164", "-p", "local3.warning"],
    );
    assert_fields(
        &e,
        &[
            ("app", "tag3164"),
            ("facility", "local3"),
            ("severity", "warning"),
            ("host", hostname().as_str()),
        ],
    );
}

#[test]
fn logger_rfc5424_with_msgid_and_structured_data() {
    let e = logged(
        "r5424",
        &[
            "--rfc5424",
            "-i",
            "-t",
            "tag5424",
            "--msgid",
            "MID7",
            "--sd-id",
            "ex@32473",
            "--sd-param",
            r#"k="a\"b\]c\\d""#,
        ],
    );
    assert_eq!(e["app"], "tag5424");
    assert_eq!(e["msgid"], "MID7");
    assert_eq!(e["sd"]["ex@32473"]["k"], r#"a"b]c\d"#);
    assert_eq!(e["sd"]["timeQuality"]["tzKnown"], "1");
    assert_eq!(e["pid"].as_str().unwrap(), e["peer"]["pid"].to_string());
    let ts = e["timestamp"].as_str().unwrap();
    assert!(
        ts.contains('T') && ts.len() > 20,
        "full 5424 timestamp: {ts}"
    );
}

#[test]
fn logger_rfc5424_without_time_or_host() {
    let e = logged("nohost", &["--rfc5424=notime,nohost", "-t", "bare"]);
    assert_eq!(e["app"], "bare");
    assert!(e.get("timestamp").is_none(), "{e}");
    assert_eq!(
        e["host"],
        hostname().as_str(),
        "missing host is this machine"
    );
}

#[test]
fn logger_octet_count_prefix_is_not_part_of_the_message() {
    let e = logged("octet", &["--octet-count", "-t", "oc"]);
    assert_eq!(e["app"], "oc");
}

#[test]
fn logger_file_sends_one_entry_per_line() {
    let d = Daemon::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("lines");
    let tag = unique("file");
    std::fs::write(&f, "one\ntwo\nthree\n").unwrap();
    logger(&d, &["-t", &tag, "-f", f.to_str().unwrap()]);
    let entries = d.wait_for("three lines", |e| {
        e.iter().filter(|v| v["app"] == tag.as_str()).count() == 3
    });
    let msgs: Vec<&Value> = entries
        .iter()
        .filter(|v| v["app"] == tag.as_str())
        .map(|v| &v["msg"])
        .collect();
    assert_eq!(msgs, ["one", "two", "three"]);
}

#[test]
fn python_sysloghandler() {
    let d = Daemon::start(&[]);
    let msg = unique("py");
    let script = format!(
        "import logging, logging.handlers\n\
         h = logging.handlers.SysLogHandler(address={path:?}, facility=logging.handlers.SysLogHandler.LOG_LOCAL2)\n\
         log = logging.getLogger('t')\n\
         log.addHandler(h)\n\
         log.error({msg:?})\n\
         h.ident = 'pyapp: '\n\
         log.warning({msg2:?})\n",
        path = d.log.to_str().unwrap(),
        msg2 = format!("{msg}-ident"),
    );
    run_ok(Command::new(require("python3")).arg("-c").arg(script));
    let e = d.entry_with_msg(&msg);
    assert_eq!(e["facility"], "local2");
    assert_eq!(e["severity"], "err");
    assert_eq!(e["source"], "syslog", "no tag: {e}");
    assert!(!e["msg"].as_str().unwrap().contains('\0'));
    let e = d.entry_with_msg(&format!("{msg}-ident"));
    assert_eq!(e["app"], "pyapp");
    assert_eq!(e["severity"], "warning");
}

#[test]
fn glibc_syslog_through_dev_log_in_a_private_namespace() {
    let d = Daemon::start(&[]);
    let msg = unique("glibc");
    // Python's syslog module is glibc's openlog/syslog(3), which only ever
    // writes to /dev/log: give it a /dev of its own where /dev/log is ours.
    let script = format!(
        "import syslog\nsyslog.openlog('ctag', syslog.LOG_PID, syslog.LOG_DAEMON)\nsyslog.syslog(syslog.LOG_INFO, {msg:?})\n"
    );
    let mut cmd = Command::new(require("unshare"));
    if !nix::unistd::getuid().is_root() {
        cmd.arg("-r");
    }
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount -t tmpfs nsdev /dev && mknod -m 666 /dev/null c 1 3 && ln -s \"$0\" /dev/log && exec \"$@\"",
        )
        .arg(&d.log)
        .arg(require("python3"))
        .arg("-c")
        .arg(script);
    run_ok(&mut cmd);
    let e = d.entry_with_msg(&msg);
    assert_fields(
        &e,
        &[
            ("app", "ctag"),
            ("facility", "daemon"),
            ("severity", "info"),
        ],
    );
    assert_eq!(e["pid"].as_str().unwrap(), e["peer"]["pid"].to_string());
}

#[test]
fn socat_datagram() {
    let d = Daemon::start(&[]);
    let msg = unique("socat");
    let mut child = Command::new(require("socat"))
        .arg("-u")
        .arg("-")
        .arg(format!("UNIX-SENDTO:{}", d.log.display()))
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    write!(stdin, "<34>Nov 21 23:40:10 sotag[9]: {msg}").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_success(&out, "socat");
    let e = d.entry_with_msg(&msg);
    assert_eq!(
        (e["facility"].as_str(), e["severity"].as_str()),
        (Some("auth"), Some("crit"))
    );
    assert_eq!(e["app"], "sotag");
    assert_eq!(e["pid"], "9");
}

#[test]
fn raw_datagrams_nobody_should_send_are_kept_and_counted() {
    let d = Daemon::start(&["--max-line-len", "1000"]);
    let nopri = unique("nopri");
    d.send(nopri.as_bytes());
    d.send(b"<999>bad pri");
    d.send(b"\xff\xfe garbage \x00 bytes");
    d.send(b"<13>Nov 21 23:40:10 app: invalid \xc3\x28 utf8");
    d.send(b"");
    let big = format!("<13>Nov 21 23:40:10 big: {}", "x".repeat(60 << 10));
    d.send(big.as_bytes());
    let entries = d.wait_for("six datagrams", |e| {
        e.iter().filter(|v| v["input"] == "syslog").count() == 6
    });
    let find = |pred: &dyn Fn(&Value) -> bool| entries.iter().find(|v| pred(v)).cloned().unwrap();

    let e = find(&|v| v["msg"] == nopri.as_str());
    assert_eq!(
        (e["facility"].as_str(), e["severity"].as_str()),
        (Some("user"), Some("notice"))
    );
    assert_eq!(e["source"], "syslog");
    find(&|v| v["msg"] == "<999>bad pri");
    find(&|v| v["msg"] == "\\xff\\xfe garbage \u{0} bytes");
    find(&|v| v["msg"] == "invalid \\xc3( utf8");
    find(&|v| v["msg"] == "" && v["input"] == "syslog");
    let e = find(&|v| v["app"] == "big");
    assert_eq!(e["truncated"], true);
    assert_eq!(e["msg"].as_str().unwrap().len(), 1000);

    let c = d.assert_ledger_balances("syslog");
    assert_eq!(c["received"], 6);
    assert_eq!(c["truncated"], 1);
    assert_eq!(c["malformed"], 4, "no PRI, bad PRI, garbage, empty: {c}");
}

#[test]
fn extra_syslog_sockets_feed_the_same_ring() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("log");
    let extra = dir.path().join("chroot").join("dev-log");
    let d = Daemon::start(&[
        "--syslog-socket",
        main.to_str().unwrap(),
        "--syslog-socket",
        extra.to_str().unwrap(),
    ]);
    let a = unique("first");
    let b = unique("second");
    assert_eq!(socket_mode(&main), 0o666);
    assert_eq!(socket_mode(&extra), 0o666);
    run_ok(
        Command::new(require("logger"))
            .arg("-u")
            .arg(&main)
            .args(["-t", "one", &a]),
    );
    run_ok(
        Command::new(require("logger"))
            .arg("-u")
            .arg(&extra)
            .args(["-t", "two", &b]),
    );
    d.entry_with_msg(&a);
    d.entry_with_msg(&b);
}

#[test]
fn fds_sent_to_dev_log_are_closed_even_when_too_many_to_parse() {
    use std::os::fd::{AsRawFd, RawFd};
    let d = Daemon::start(&[]);
    let before = d.settled_fds();
    // More fds than /dev/log has room for: the kernel installs those that
    // fit and cuts the control message.
    let pairs: Vec<_> = (0..20)
        .map(|_| std::os::unix::net::UnixStream::pair().unwrap())
        .collect();
    let raw: Vec<RawFd> = pairs.iter().map(|(a, _)| a.as_raw_fd()).collect();
    let msg = unique("with-fds");
    send_fds(
        &d.log,
        format!("<13>Nov 21 23:40:10 t: {msg}").as_bytes(),
        &raw,
    )
    .unwrap();
    let e = d.entry_with_msg(&msg);
    assert!(
        e["peer"]["pid"].is_u64(),
        "the credentials still count: {e}"
    );
    d.wait_until("every received fd closed", |_| open_fds(d.pid()) <= before);
}
