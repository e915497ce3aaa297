//! rsyslogd as a central server for ringlogd's routes: one input (imudp,
//! imtcp, imtcp with TLS, or imrelp) on a loopback port, every message
//! written to a file as one JSON object of the fields it was parsed into.
//! It can be killed and started again on the same port and file.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::syslogd::program;
use super::{run_ok, signal, wait_peer_listening, wait_timeout, Received};

/// What the receiver listens with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Udp,
    Tcp,
    Relp,
    /// imtcp over TLS (gtls), asking for a client certificate named
    /// `client.test` signed by the test CA.
    Tls,
}

/// The fields of every message, as rsyslog parsed them.
const TEMPLATE: &str = r#"template(name="fields" type="list") {
  constant(value="{\"pri\":\"") property(name="pri")
  constant(value="\",\"time\":\"") property(name="timereported" dateFormat="rfc3339")
  constant(value="\",\"host\":\"") property(name="hostname" format="json")
  constant(value="\",\"app\":\"") property(name="app-name" format="json")
  constant(value="\",\"procid\":\"") property(name="procid" format="json")
  constant(value="\",\"msgid\":\"") property(name="msgid" format="json")
  constant(value="\",\"sd\":\"") property(name="structured-data" format="json")
  constant(value="\",\"msg\":\"") property(name="msg" format="json")
  constant(value="\"}\n")
}"#;

/// Certificates made with openssl for a TLS receiver.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    /// A CA, a server certificate for `localhost` and 127.0.0.1, and a
    /// client certificate for `client.test`, in `dir`.
    pub fn make(dir: &Path) -> Pki {
        let openssl = super::require("openssl");
        let run = |args: &[&str]| {
            run_ok(Command::new(&openssl).current_dir(dir).args(args));
        };
        let key = |name: &str| {
            run(&[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                name,
            ])
        };
        key("ca-key.pem");
        run(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca-key.pem",
            "-days",
            "2",
            "-subj",
            "/CN=ringlogd test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "ca.pem",
        ]);
        for (name, cn, ext) in [
            (
                "server",
                "localhost",
                "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
            ),
            (
                "client",
                "client.test",
                "subjectAltName=DNS:client.test\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
            ),
        ] {
            key(&format!("{name}-key.pem"));
            run(&[
                "req", "-new", "-key", &format!("{name}-key.pem"), "-subj", &format!("/CN={cn}"),
                "-out", &format!("{name}.csr"),
            ]);
            std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
            run(&[
                "x509", "-req", "-in", &format!("{name}.csr"), "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                "-CAcreateserial", "-days", "2", "-extfile", &format!("{name}.ext"),
                "-out", &format!("{name}.pem"),
            ]);
        }
        Pki {
            dir: dir.to_owned(),
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }
}

/// A free loopback port for `input` (bound and released: rsyslog binds it
/// next).
pub fn free_port(input: Input) -> u16 {
    match input {
        Input::Udp => UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        _ => TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    }
}

/// A running (or stopped) rsyslogd receiver.
pub struct Receiver {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub input: Input,
    pub out: PathBuf,
    conf: PathBuf,
    starts: u32,
}

impl Receiver {
    /// Start a receiver for `input` on a free port. TLS uses the
    /// certificates of `pki`.
    pub fn start(input: Input, pki: Option<&Pki>) -> Receiver {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port(input);
        let out = dir.path().join("out.jsonl");
        std::fs::create_dir(dir.path().join("work")).unwrap();
        let work = dir.path().join("work");
        let (global, module) = match input {
            Input::Udp => (String::new(), format!(
                "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\")"
            )),
            Input::Tcp => (String::new(), format!(
                "module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")"
            )),
            Input::Relp => (String::new(), format!(
                "module(load=\"imrelp\")\ninput(type=\"imrelp\" address=\"127.0.0.1\" port=\"{port}\")"
            )),
            Input::Tls => {
                let pki = pki.expect("TLS needs certificates");
                (
                    format!(
                        " DefaultNetstreamDriver=\"gtls\" DefaultNetstreamDriverCAFile=\"{}\" \
                         DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\"",
                        pki.path("ca.pem"),
                        pki.path("server.pem"),
                        pki.path("server-key.pem")
                    ),
                    format!(
                        "module(load=\"imtcp\" StreamDriver.Name=\"gtls\" StreamDriver.Mode=\"1\" \
                         StreamDriver.AuthMode=\"x509/name\" PermittedPeer=[\"client.test\"])\n\
                         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")"
                    ),
                )
            }
        };
        // Direct queue: a message is in the file before the input takes
        // the next one (and, for RELP, before it is acknowledged), so a
        // killed receiver loses only what it had not acknowledged.
        let conf = format!(
            "global(workDirectory=\"{work}\" maxMessageSize=\"64k\"\n       \
             parser.escapeControlCharactersOnReceive=\"off\"{global})\n\
             main_queue(queue.type=\"Direct\")\n\
             {module}\n{TEMPLATE}\n\
             *.* action(type=\"omfile\" file=\"{out}\" template=\"fields\")\n",
            work = work.display(),
            out = out.display(),
        );
        Receiver::with_config(dir, input, port, out, &conf)
    }

    /// rsyslogd with the whole configuration `conf`, listening on `port`;
    /// `out` is where [`Receiver::messages`] reads the JSON lines, if any.
    pub fn with_config(
        dir: tempfile::TempDir,
        input: Input,
        port: u16,
        out: PathBuf,
        conf: &str,
    ) -> Receiver {
        let path = dir.path().join("rsyslog.conf");
        std::fs::write(&path, conf).unwrap();
        let conf = path;
        let mut r = Receiver {
            child: None,
            dir,
            port,
            input,
            out,
            conf,
            starts: 0,
        };
        r.restart();
        r
    }

    fn command(&self, extra: &[&str]) -> Command {
        let prog = program("rsyslogd", "rsyslog");
        let mut c = Command::new(&prog.exe);
        c.arg("-f").arg(&self.conf).args(extra);
        if let Some(root) = &prog.root {
            let lib = root.join("usr/lib");
            let dir = std::fs::read_dir(&lib)
                .unwrap()
                .flatten()
                .map(|e| e.path().join("rsyslog"))
                .find(|p| p.join("omuxsock.so").is_file())
                .expect("rsyslog modules");
            c.arg("-M").arg(dir);
        }
        c
    }

    /// Start it (again), and wait until it listens.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        if self.starts == 0 {
            run_ok(&mut self.command(&["-N1"]));
        }
        self.starts += 1;
        let log = std::fs::File::create(
            self.dir
                .path()
                .join(format!("rsyslogd-{}.log", self.starts)),
        )
        .unwrap();
        let pid = self.dir.path().join("rsyslogd.pid");
        let child = self
            .command(&["-n", "-i", pid.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        let mut child = self.child.take().expect("started");
        wait_peer_listening(
            "rsyslogd",
            &mut child,
            self.port,
            || self.listening(),
            || self.log(),
        );
        self.child = Some(child);
    }

    /// Whether the port is taken (by rsyslogd, once started).
    fn listening(&self) -> bool {
        match self.input {
            Input::Udp => UdpSocket::bind(("127.0.0.1", self.port)).is_err(),
            _ => TcpListener::bind(("127.0.0.1", self.port)).is_err(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -SIG` it and wait for it to be gone.
    pub fn kill(&mut self, sig: &str) {
        let mut child = self.child.take().expect("running");
        signal(child.id(), sig);
        wait_timeout(&mut child, Duration::from_secs(10));
    }

    /// Everything rsyslogd logged about itself.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("rsyslogd-{i}.log")))
                    .unwrap_or_default()
            })
            .collect()
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        // A last line without its newline is still being written.
        let done = text.rfind('\n').map_or("", |i| &text[..i]);
        done.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line ({e}): {l}")))
            .collect()
    }

    /// The one message whose text contains `needle`, once it arrived.
    pub fn message_with(&self, needle: &str) -> Value {
        let m = self.wait_for(needle, 10, |m| {
            m.iter()
                .any(|v| v["msg"].as_str().is_some_and(|s| s.contains(needle)))
        });
        let found: Vec<_> = m
            .into_iter()
            .filter(|v| v["msg"].as_str().is_some_and(|s| s.contains(needle)))
            .collect();
        assert_eq!(found.len(), 1, "{needle}: {found:#?}");
        found.into_iter().next().unwrap()
    }

    pub fn url(&self, scheme: &str, options: &str) -> String {
        let q = if options.is_empty() {
            String::new()
        } else {
            format!("?{options}")
        };
        format!("{scheme}://127.0.0.1:{}{q}", self.port)
    }
}

impl Received for Receiver {
    const EVERY: Duration = Duration::from_millis(20);

    fn received(&self) -> Vec<Value> {
        self.messages()
    }

    fn describe(&self, got: &[Value]) -> String {
        let tail: Vec<_> = got.iter().rev().take(5).collect();
        let log = self.log();
        format!(
            "{} messages, the last: {tail:#?}\nrsyslogd: {log}",
            got.len()
        )
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
