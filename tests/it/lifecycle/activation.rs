//! Socket activation and readiness, with this test playing systemd's part:
//! it binds the sockets, starts ringlogd with them as fds 3, 4, ... and
//! `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES` set, and reads what
//! ringlogd sends to `NOTIFY_SOCKET`.

use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// A started daemon, killed if a failing test leaves it running (its
/// stdout is the test's, which would keep the test run waiting).
struct Started(Option<Child>);

impl Started {
    fn id(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    fn take(mut self) -> Child {
        self.0.take().expect("running")
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The service manager's side of one start.
struct Manager {
    dir: tempfile::TempDir,
    notify: UnixDatagram,
    notify_addr: String,
}

impl Manager {
    fn new() -> Manager {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let notify = UnixDatagram::bind(&path).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Manager {
            notify_addr: path.to_str().unwrap().to_owned(),
            dir,
            notify,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Start ringlogd with `fds` as 3, 4, ... named as given, and
    /// `LISTEN_PID` its own pid unless `listen_pid` says otherwise.
    fn start(&self, fds: &[(RawFd, &str)], args: &[&str], listen_pid: Option<&str>) -> Started {
        let names: Vec<&str> = fds.iter().map(|(_, n)| *n).collect();
        // exec keeps the pid, so the shell's $$ is the daemon's pid, as
        // systemd sets LISTEN_PID in the child it forks.
        let script = match listen_pid {
            None => "LISTEN_PID=$$ exec \"$0\" \"$@\"".to_owned(),
            Some(p) => format!("LISTEN_PID={p} exec \"$0\" \"$@\""),
        };
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg(RINGLOGD)
            .args(args)
            .env("LISTEN_FDS", fds.len().to_string())
            .env("LISTEN_FDNAMES", names.join(":"))
            .env("NOTIFY_SOCKET", &self.notify_addr)
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        let from: Vec<RawFd> = fds.iter().map(|(fd, _)| *fd).collect();
        // SAFETY: only dup2, fcntl and close run between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                use nix::libc;
                // Out of the way first, so that no source is overwritten.
                for (i, &fd) in from.iter().enumerate() {
                    if libc::dup2(fd, 100 + i as RawFd) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for i in 0..from.len() as RawFd {
                    if libc::dup2(100 + i, 3 + i) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(100 + i);
                }
                Ok(())
            })
        };
        Started(Some(
            cmd.spawn().expect("start ringlogd under the fake manager"),
        ))
    }

    /// The next notification, as text. The fd store's (FDSTORE=1,
    /// FDSTOREREMOVE=1) are lifecycle::restart's business and skipped here.
    fn notice(&self) -> String {
        loop {
            let mut buf = [0u8; 4096];
            let n = self
                .notify
                .recv(&mut buf)
                .expect("ringlogd sent nothing to NOTIFY_SOCKET within 10 s");
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !text.starts_with("FDSTORE") {
                return text;
            }
        }
    }
}

fn dump(query: &Path) -> Vec<serde_json::Value> {
    let mut c = std::os::unix::net::UnixStream::connect(query).expect("connect query socket");
    c.write_all(&[0]).unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut c, &mut out).unwrap();
    parse_lines(&out)
}

fn wait_msgs(query: &Path, want: &[&str]) -> Vec<serde_json::Value> {
    for _ in 0..500 {
        let entries = dump(query);
        if want.iter().all(|w| entries.iter().any(|e| e["msg"] == *w)) {
            return entries;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{want:?} did not all arrive; ring: {:#?}", dump(query));
}

fn stop(started: Started) -> std::process::ExitStatus {
    let mut child = started.take();
    signal(child.id(), "TERM");
    wait_timeout(&mut child, Duration::from_secs(10))
}

#[test]
fn named_sockets_are_used_as_handed_and_readiness_comes_once_they_serve() {
    let m = Manager::new();
    let syslog_a = UnixDatagram::bind(m.path("a.sock")).unwrap();
    let syslog_b = UnixDatagram::bind(m.path("b.sock")).unwrap();
    let intake = UnixDatagram::bind(m.path("intake.sock")).unwrap();
    let query = UnixListener::bind(m.path("q.sock")).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let run = m.path("run");
    std::fs::create_dir(&run).unwrap();
    let conf = m.path("ringlogd.toml");
    std::fs::write(&conf, "").unwrap();
    let child = m.start(
        &[
            (syslog_a.as_raw_fd(), "syslog"),
            (query.as_raw_fd(), "query"),
            (udp.as_raw_fd(), "udp"),
            (intake.as_raw_fd(), "intake"),
            (tcp.as_raw_fd(), "tcp"),
            (syslog_b.as_raw_fd(), "syslog"),
        ],
        &[
            "--no-kmsg",
            "--runtime-dir",
            run.to_str().unwrap(),
            "--config",
            conf.to_str().unwrap(),
        ],
        None,
    );
    let ready = m.notice();
    assert_eq!(
        ready,
        format!("READY=1\nMAINPID={}\nSTATUS=serving", child.id())
    );
    // Ready means serving: the query socket answers at once.
    let first = dump(&m.path("q.sock"));
    assert_eq!(first[0]["msg"], "memlogd started");

    send_datagram(&m.path("a.sock"), b"<14>t: via a");
    send_datagram(&m.path("b.sock"), b"<14>t: via b");
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    send_fds(&m.path("intake.sock"), b"svc", &[theirs.as_raw_fd()]).unwrap();
    drop(theirs);
    ours.write_all(b"via intake\n").unwrap();
    drop(ours);
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"<14>t: via udp", udp.local_addr().unwrap())
        .unwrap();
    TcpStream::connect(tcp.local_addr().unwrap())
        .unwrap()
        .write_all(b"<14>t: via tcp\n")
        .unwrap();
    let entries = wait_msgs(
        &m.path("q.sock"),
        &["via a", "via b", "via intake", "via udp", "via tcp"],
    );
    let input_of = |msg: &str| entries.iter().find(|e| e["msg"] == msg).unwrap()["input"].clone();
    assert_eq!(input_of("via a"), "syslog");
    assert_eq!(input_of("via intake"), "fd");
    assert_eq!(input_of("via udp"), "net");
    assert_eq!(input_of("via tcp"), "net");
    let listening: Vec<_> = entries
        .iter()
        .filter_map(|e| e["msg"].as_str())
        .filter(|m| m.starts_with("listening on"))
        .collect();
    assert_eq!(
        listening,
        [
            format!("listening on udp {}", udp.local_addr().unwrap()),
            format!("listening on tcp {}", tcp.local_addr().unwrap())
        ]
    );
    assert_eq!(
        std::fs::read_dir(&run).unwrap().count(),
        0,
        "every socket was handed in, so no default path is bound"
    );
    // A reload is bracketed for the manager.
    signal(child.id(), "HUP");
    assert!(m.notice().starts_with("RELOADING=1\nMONOTONIC_USEC="));
    assert!(m.notice().starts_with("READY=1\n"));
    assert!(stop_notices(&m, child).success());
    for p in ["a.sock", "b.sock", "intake.sock", "q.sock"] {
        assert!(
            m.path(p).exists(),
            "{p} was unlinked; it belongs to the manager"
        );
    }
}

/// SIGTERM, expecting STOPPING=1 first.
fn stop_notices(m: &Manager, child: Started) -> std::process::ExitStatus {
    let pid = child.id();
    let status = stop(child);
    assert_eq!(m.notice(), "STOPPING=1", "pid {pid}");
    status
}

#[test]
fn unnamed_sockets_are_told_apart_by_type_and_the_rest_are_bound() {
    let m = Manager::new();
    let syslog = UnixDatagram::bind(m.path("log")).unwrap();
    let query = UnixListener::bind(m.path("q.sock")).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let run = m.path("run");
    std::fs::create_dir(&run).unwrap();
    // systemd names an fd after its socket unit unless told otherwise.
    let child = m.start(
        &[
            (udp.as_raw_fd(), "ringlogd-net.socket"),
            (query.as_raw_fd(), "ringlogd-query.socket"),
            (syslog.as_raw_fd(), "syslog.socket"),
        ],
        &["--no-kmsg", "--runtime-dir", run.to_str().unwrap()],
        None,
    );
    assert!(m.notice().starts_with("READY=1\n"));
    send_datagram(&m.path("log"), b"<14>t: forwarded by journald");
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"<14>t: by udp", udp.local_addr().unwrap())
        .unwrap();
    wait_msgs(&m.path("q.sock"), &["forwarded by journald", "by udp"]);
    // The intake was not handed in, so it is bound as usual; the syslog
    // socket was, so /dev/log's stand-in is not.
    let bound: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(bound, ["linuxkit-external-logging.sock"]);
    let intake = run.join("linuxkit-external-logging.sock");
    let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    send_fds(&intake, b"svc", &[theirs.as_raw_fd()]).unwrap();
    drop(theirs);
    ours.write_all(b"into the bound intake\n").unwrap();
    drop(ours);
    wait_msgs(&m.path("q.sock"), &["into the bound intake"]);
    assert!(stop_notices(&m, child).success());
    assert!(
        !intake.exists(),
        "a socket ringlogd bound is removed at exit"
    );
}

#[test]
fn a_socket_that_does_not_fit_its_name_stops_the_daemon() {
    let m = Manager::new();
    let dgram = UnixDatagram::bind(m.path("d.sock")).unwrap();
    let query = UnixListener::bind(m.path("q.sock")).unwrap();
    let run = m.path("run");
    std::fs::create_dir(&run).unwrap();
    type Case<'a> = (&'a [(RawFd, &'a str)], &'a [&'a str], &'a str);
    let cases: [Case; 3] = [
        (
            &[(query.as_raw_fd(), "query"), (dgram.as_raw_fd(), "query")],
            &[],
            "ringlogd: socket activation: fd 4 (query): is a unix datagram socket, but query needs a listening unix stream socket",
        ),
        (
            &[(query.as_raw_fd(), "query"), (query.as_raw_fd(), "x")],
            &[],
            "ringlogd: socket activation: fd 4 (x): a second query socket; one is allowed",
        ),
        (
            &[(dgram.as_raw_fd(), "syslog")],
            &["--daemonize"],
            "ringlogd: --daemonize and socket activation do not mix",
        ),
    ];
    for (fds, extra, want) in cases {
        let mut args = vec!["--no-kmsg", "--runtime-dir", run.to_str().unwrap()];
        args.extend_from_slice(extra);
        let child = m.start(fds, &args, None);
        let out = child.take().wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.starts_with(want), "{err}");
        assert_eq!(
            std::fs::read_dir(&run).unwrap().count(),
            0,
            "nothing is bound"
        );
    }
}

#[test]
fn sockets_meant_for_another_process_are_left_alone() {
    let m = Manager::new();
    let dgram = UnixDatagram::bind(m.path("d.sock")).unwrap();
    let run = m.path("run");
    let child = m.start(
        &[(dgram.as_raw_fd(), "syslog")],
        &["--no-kmsg", "--runtime-dir", run.to_str().unwrap()],
        Some("1"),
    );
    assert!(m.notice().starts_with("READY=1\n"));
    // It bound its own sockets, as when started by hand.
    assert!(wait_socket(&run.join("memlogdq.sock")));
    assert!(run.join("log").exists());
    assert!(stop_notices(&m, child).success());
}

#[test]
fn readiness_reaches_an_abstract_notify_socket() {
    let name = format!("ringlogd-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let notify = UnixDatagram::bind_addr(&addr).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = ringlogd_command()
        .arg("--runtime-dir")
        .arg(dir.path())
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    // The ring's memfd goes to the fd store first (lifecycle::restart).
    let n = loop {
        let n = notify
            .recv(&mut buf)
            .expect("no READY=1 on the abstract socket");
        if !buf[..n].starts_with(b"FDSTORE") {
            break n;
        }
    };
    assert!(
        buf[..n].starts_with(b"READY=1\n"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(std::os::unix::net::UnixStream::connect(dir.path().join("memlogdq.sock")).is_ok());
    signal(child.id(), "TERM");
    assert!(wait_timeout(&mut child, Duration::from_secs(10)).success());
}
