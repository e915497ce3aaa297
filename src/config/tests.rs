//! The command line as users type it: flags, defaults and the errors they get.

use super::*;
use clap::CommandFactory;

fn args(v: &[&str]) -> Result<DaemonArgs, clap::Error> {
    DaemonArgs::try_parse_from(go_style_args(
        v.iter().map(OsString::from),
        &DaemonArgs::command(),
    ))
}

/// Each of `flag_sets`, after the program name, is refused.
fn assert_all_rejected(flag_sets: &[&[&str]]) {
    for bad in flag_sets {
        let mut v = vec!["ringlogd"];
        v.extend_from_slice(bad);
        assert!(args(&v).is_err(), "{bad:?}");
    }
}

#[test]
fn sizes() {
    assert_eq!(parse_size("4096"), Ok(4096));
    assert_eq!(parse_size("64k"), Ok(64 << 10));
    assert_eq!(parse_size("8M"), Ok(8 << 20));
    assert_eq!(parse_size("8MiB"), Ok(8 << 20));
    assert_eq!(parse_size("1G"), Ok(1 << 30));
    assert!(parse_size("lots").is_err());
    assert!(parse_size("8X").is_err());
    assert!(parse_size("99999999999999999999").is_err());
}

#[test]
fn defaults_match_memlogd() {
    let s = Settings::default();
    assert_eq!(s.syslog_sockets, vec![PathBuf::from("/dev/log")]);
    assert_eq!(s.query_socket, PathBuf::from("/var/run/memlogdq.sock"));
    assert_eq!(s.limits.max_lines, 5000);
    assert_eq!(s.limits.max_bytes, crate::ring::DEFAULT_MAX_BYTES);
    assert_eq!(s.max_line_len, 8192);
    assert_eq!(s.kmsg, Some(PathBuf::from("/dev/kmsg")));
    assert!(
        s.net.udp.is_empty() && s.net.tcp.is_empty(),
        "no network unless asked"
    );
    assert_eq!(s.net.tcp_max_conns, 256);
    assert_eq!(s.net.tcp_idle_timeout, Some(Duration::from_secs(300)));
    assert_eq!(
        s.intake_socket,
        PathBuf::from("/var/run/linuxkit-external-logging.sock")
    );
    assert_eq!(s.max_fds, 1024);
    assert!(!s.level_prefix && !s.daemonize);
    assert_eq!((s.intake_fd, s.query_fd), (None, None));
    assert_eq!((s.query_mode, s.query_group), (0o600, None));
}

#[test]
fn query_mode_and_group() {
    let s = |v: &[&str]| {
        let s = args(v).unwrap().settings();
        (s.query_mode, s.query_group)
    };
    assert_eq!(s(&["ringlogd", "--query-group", "0"]), (0o660, Some(0)));
    assert_eq!(s(&["ringlogd", "--query-group", "root"]), (0o660, Some(0)));
    assert_eq!(s(&["ringlogd", "--query-mode", "0666"]), (0o666, None));
    assert_eq!(
        s(&["ringlogd", "-query-mode=640", "-query-group", "7"]),
        (0o640, Some(7))
    );
    assert_all_rejected(&[
        &["--query-mode", "0999"][..],
        &["--query-mode", "1777"],
        &["--query-mode", "rw"],
        &["--query-group", "no-such-group-here"],
    ]);
}

#[test]
fn kmsg_flags() {
    let s = |v: &[&str]| args(v).unwrap().settings().kmsg;
    assert_eq!(s(&["ringlogd", "--no-kmsg"]), None);
    assert_eq!(s(&["ringlogd", "-no-kmsg"]), None);
    assert_eq!(
        s(&["ringlogd", "-kmsg", "/tmp/saved"]),
        Some(PathBuf::from("/tmp/saved"))
    );
    assert_eq!(
        s(&["ringlogd", "--runtime-dir", "/tmp/x"]),
        Some(PathBuf::from("/dev/kmsg")),
        "--runtime-dir places sockets, it does not turn kmsg off"
    );
    assert!(args(&["ringlogd", "--kmsg", "/x", "--no-kmsg"]).is_err());
}

#[test]
fn network_listeners() {
    let s = args(&[
        "ringlogd",
        "--udp",
        "127.0.0.1:514",
        "-udp=[::1]:0",
        "--tcp",
        "[::]:6514",
        "--tcp-max-conns",
        "2",
        "--tcp-idle-timeout",
        "0",
    ])
    .unwrap()
    .settings();
    assert_eq!(
        s.net.udp,
        vec![
            "127.0.0.1:514".parse::<SocketAddr>().unwrap(),
            "[::1]:0".parse().unwrap()
        ]
    );
    assert_eq!(s.net.tcp, vec!["[::]:6514".parse::<SocketAddr>().unwrap()]);
    assert_eq!(s.net.tcp_max_conns, 2);
    assert_eq!(s.net.tcp_idle_timeout, None);
    assert_all_rejected(&[
        &["--udp", "localhost:514"][..],
        &["--tcp", "127.0.0.1"],
        &["--tcp", "::1:514"],
        &["--tcp-max-conns", "0"],
    ]);
}

#[test]
fn memlogd_command_lines_are_accepted() {
    let s = args(&[
        "memlogd",
        "-socket-log",
        "/l",
        "-socket-query",
        "/q",
        "-max-lines",
        "10",
        "-max-line-len",
        "64",
        "-daemonize",
    ])
    .unwrap()
    .settings();
    assert_eq!(s.intake_socket, PathBuf::from("/l"));
    assert_eq!(s.query_socket, PathBuf::from("/q"));
    assert_eq!((s.limits.max_lines, s.max_line_len), (10, 64));
    assert!(s.daemonize);
    let s = args(&["memlogd", "-fd-log", "3", "-fd-query=4", "-level-prefix"])
        .unwrap()
        .settings();
    assert_eq!((s.intake_fd, s.query_fd), (Some(3), Some(4)));
    assert!(s.level_prefix);
}

#[test]
fn inherited_syslog_fds_replace_the_default_path() {
    let s = args(&["ringlogd", "--fd-syslog", "5"]).unwrap().settings();
    assert_eq!(s.syslog_fds, vec![5]);
    assert!(s.syslog_sockets.is_empty());
    let s = args(&["ringlogd", "--fd-syslog", "5", "--syslog-socket", "/l"])
        .unwrap()
        .settings();
    assert_eq!(s.syslog_sockets, vec![PathBuf::from("/l")]);
}

#[test]
fn go_style_flags_are_accepted() {
    let a = args(&[
        "ringlogd",
        "-socket-query",
        "/q",
        "-max-lines=10",
        "--max-bytes",
        "64k",
    ])
    .unwrap();
    let s = a.settings();
    assert_eq!(s.query_socket, PathBuf::from("/q"));
    assert_eq!(s.limits.max_lines, 10);
    assert_eq!(s.limits.max_bytes, 64 << 10);
}

#[test]
fn runtime_dir_places_every_socket() {
    let s = args(&["ringlogd", "--runtime-dir", "/tmp/x"])
        .unwrap()
        .settings();
    assert_eq!(s.syslog_sockets, vec![PathBuf::from("/tmp/x/log")]);
    assert_eq!(s.query_socket, PathBuf::from("/tmp/x/memlogdq.sock"));
    assert_eq!(
        s.intake_socket,
        PathBuf::from("/tmp/x/linuxkit-external-logging.sock")
    );
}

#[test]
fn routes_and_multiline() {
    let s = args(&[
        "ringlogd",
        "--route",
        "relp://127.0.0.1:2514",
        "-route=udp://[::1]:514?format=rfc3164&priority=err",
        "--multiline",
        "^\\s",
        "--multiline-match",
        "first",
    ])
    .unwrap()
    .settings();
    assert_eq!(s.routes.len(), 2);
    assert_eq!(s.routes[1].host, "::1");
    let m = s.multiline.unwrap();
    assert_eq!(m.pattern, "^\\s");
    assert_eq!(m.mode, multiline::Mode::First);
    assert_eq!(m.flush, multiline::DEFAULT_FLUSH);
    assert!(Settings::default().routes.is_empty());
    assert!(Settings::default().multiline.is_none());
    assert_all_rejected(&[
        &["--route", "tcp://h"][..],
        &["--route", "tcp://h:1?nope=1"],
        &["--multiline", "("],
        &["--multiline-match", "first"],
        &["--multiline", "x", "--multiline-match", "middle"],
        &["--multiline", "x", "--multiline-flush", "0"],
    ]);
}

#[test]
fn bad_values_are_errors() {
    assert!(args(&["ringlogd", "--max-bytes", "1k"]).is_err());
    assert!(args(&["ringlogd", "--max-lines", "0"]).is_err());
    assert!(args(&["ringlogd", "-nosuchflag"]).is_err());
    assert!(args(&["ringlogd", "--max-fds", "0"]).is_err());
    assert!(args(&["ringlogd", "--fd-log", "-1"]).is_err());
    assert!(args(&["ringlogd", "--fd-query", "x"]).is_err());
}
