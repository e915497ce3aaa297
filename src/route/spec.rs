//! A route as the user writes it, `SCHEME://HOST:PORT?key=value&...`,
//! parsed and checked once at start so that a bad route is a clear start-up
//! error rather than a surprise at the first message.
//!
//! The options are kept as plain values (filters as their text), so a
//! configuration file's `[[route]]` table can map onto the same
//! [`RouteSpec::from_parts`] as the URL's query string does.

use std::path::PathBuf;

use crate::view::filter::Filter;
use crate::view::format::Format;

/// How records travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Relp,
    /// Uploads to `systemd-journal-remote` over HTTP.
    Journal,
    /// The same over HTTPS.
    JournalTls,
}

impl Transport {
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Relp => "relp",
            Transport::Journal => "journal+http",
            Transport::JournalTls => "journal+https",
        }
    }

    /// A byte stream of syslog messages, which need framing.
    pub fn is_stream(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// Carried in TLS, with the `ca`, `cert`, `key` and `name` options.
    pub fn is_tls(self) -> bool {
        matches!(self, Transport::Tls | Transport::JournalTls)
    }

    /// Uploads to a journal server, in its own format.
    pub fn is_journal(self) -> bool {
        matches!(self, Transport::Journal | Transport::JournalTls)
    }

    /// The receiver confirms what it took: delivered means confirmed.
    pub fn acknowledges(self) -> bool {
        self == Transport::Relp || self.is_journal()
    }
}

/// How messages are delimited on a stream (RFC 6587).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `LEN SP MSG`: a newline inside a message is safe.
    Octet,
    /// `MSG LF`: a newline inside a message is sent as `#012`, as rsyslog
    /// writes control characters, so it cannot end the message early.
    Lf,
}

/// The TLS options of a `tls://` route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of the CAs that may sign the server's certificate; the
    /// system's bundle when absent.
    pub ca: Option<PathBuf>,
    /// PEM client certificate (chain) and its key, for servers that ask.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// The name the server's certificate must carry; the URL's host when
    /// absent.
    pub name: Option<String>,
}

/// Default RELP window: frames sent and not yet acknowledged, as librelp.
pub const DEFAULT_RELP_WINDOW: usize = 128;

/// One route, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// As the user wrote it, for stats and messages.
    pub url: String,
    pub transport: Transport,
    /// A name or an address, without the brackets of an IPv6 literal.
    pub host: String,
    pub port: u16,
    pub format: Format,
    pub framing: Framing,
    /// Query filters, as `(key, value)`; checked by [`RouteSpec::from_parts`].
    pub filters: Vec<(String, String)>,
    pub tls: TlsOptions,
    /// RELP: most frames in flight without an acknowledgement.
    pub window: usize,
    /// `capture=1`: only the entries of captures (see `--capture`).
    pub captured: bool,
}

/// The schemes a route URL may have.
const SCHEMES: &str = "udp, tcp, tls, relp, journal+http or journal+https";

/// The option keys a route takes besides its filters.
const OPTIONS: &str = "format, framing, priority, facility, source, app, input, grep, \
                       capture, ca, cert, key, name, window";

impl RouteSpec {
    /// Parse `SCHEME://HOST:PORT[?key=value&...]`.
    pub fn parse(url: &str) -> Result<RouteSpec, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        RouteSpec::from_parts(base, &pairs).map(|mut s| {
            s.url = url.to_owned();
            s
        })
    }

    /// A route from its address (`SCHEME://HOST:PORT`) and its options.
    pub fn from_parts(address: &str, options: &[(String, String)]) -> Result<RouteSpec, String> {
        let fail = |why: String| format!("route {address:?}: {why}");
        let (scheme, rest) = address
            .split_once("://")
            .ok_or_else(|| fail(format!("not SCHEME://HOST:PORT ({SCHEMES})")))?;
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            "relp" => Transport::Relp,
            "journal+http" => Transport::Journal,
            "journal+https" => Transport::JournalTls,
            other => return Err(fail(format!("unknown transport {other:?} (use {SCHEMES})"))),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = split_host_port(rest).map_err(fail)?;
        let mut spec = RouteSpec {
            url: address.to_owned(),
            transport,
            host,
            port,
            format: Format::Rfc5424,
            framing: Framing::Octet,
            filters: Vec::new(),
            tls: TlsOptions::default(),
            window: DEFAULT_RELP_WINDOW,
            captured: false,
        };
        let mut framing = None;
        let mut filter = Filter::default();
        for (key, value) in options {
            match key.as_str() {
                "format" => {
                    spec.format = match value.as_str() {
                        "rfc5424" => Format::Rfc5424,
                        "rfc3164" => Format::Rfc3164,
                        "json" => Format::Json,
                        "raw" => Format::Cat,
                        _ => {
                            return Err(fail(format!(
                                "format={value:?}: use rfc5424, rfc3164, json or raw"
                            )))
                        }
                    }
                }
                "framing" => {
                    framing = Some(match value.as_str() {
                        "octet" | "octet-counted" => Framing::Octet,
                        "lf" => Framing::Lf,
                        _ => return Err(fail(format!("framing={value:?}: use octet or lf"))),
                    })
                }
                "priority" | "facility" | "source" | "app" | "input" | "grep" => {
                    filter.set(key, value, 0).map_err(fail)?;
                    spec.filters.push((key.clone(), value.clone()));
                }
                "capture" => {
                    spec.captured = match value.as_str() {
                        "1" | "true" | "yes" => true,
                        "0" | "false" | "no" => false,
                        _ => {
                            return Err(fail(format!(
                                "capture={value:?}: 1 (only the entries of captures) or 0"
                            )))
                        }
                    }
                }
                "ca" => spec.tls.ca = Some(PathBuf::from(value)),
                "cert" => spec.tls.cert = Some(PathBuf::from(value)),
                "key" => spec.tls.key = Some(PathBuf::from(value)),
                "name" => spec.tls.name = Some(value.clone()),
                "window" => {
                    spec.window = match value.parse::<usize>() {
                        Ok(n) if (1..=100_000).contains(&n) => n,
                        _ => {
                            return Err(fail(format!(
                                "window={value:?}: a number from 1 to 100000"
                            )))
                        }
                    }
                }
                _ => return Err(fail(format!("unknown option {key:?} (known: {OPTIONS})"))),
            }
        }
        if framing.is_some() && !transport.is_stream() {
            return Err(fail(format!(
                "framing applies to tcp and tls only: {} sends one message per {}",
                transport.scheme(),
                match transport {
                    Transport::Udp => "datagram",
                    Transport::Relp => "RELP frame",
                    _ => "journal entry",
                }
            )));
        }
        if transport.is_journal() && options.iter().any(|(k, _)| k == "format") {
            return Err(fail(
                "format applies to syslog routes: journal routes send the journal's export format"
                    .into(),
            ));
        }
        // Octet counting keeps a multi-line message whole; receivers expect
        // it with RFC 5424 (rsyslog's and syslog-ng's defaults), and LF
        // framing with the older formats.
        spec.framing = framing.unwrap_or(if spec.format == Format::Rfc5424 {
            Framing::Octet
        } else {
            Framing::Lf
        });
        let tls_given = spec.tls != TlsOptions::default();
        if tls_given && !transport.is_tls() {
            return Err(fail(
                "ca, cert, key and name apply to tls:// and journal+https:// only".into(),
            ));
        }
        if spec.tls.cert.is_some() != spec.tls.key.is_some() {
            return Err(fail(
                "a client certificate needs both cert= and key=".into(),
            ));
        }
        if options.iter().any(|(k, _)| k == "window") && transport != Transport::Relp {
            return Err(fail("window applies to relp:// only".into()));
        }
        Ok(spec)
    }

    /// The route's filter. The values were checked when it was parsed.
    pub fn filter(&self) -> Filter {
        let mut f = Filter::default();
        for (k, v) in &self.filters {
            f.set(k, v, 0)
                .expect("route filters are checked when parsed");
        }
        f
    }

    /// The address without options, for messages.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!(
                "{}://[{}]:{}",
                self.transport.scheme(),
                self.host,
                self.port
            )
        } else {
            format!("{}://{}:{}", self.transport.scheme(), self.host, self.port)
        }
    }
}

/// `host:port` or `[v6]:port`.
fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| format!("{s:?} is not [ADDRESS]:PORT"))?;
        (h, p)
    } else {
        s.rsplit_once(':')
            .ok_or_else(|| format!("{s:?} has no :PORT"))?
    };
    if host.is_empty()
        || host.contains(['/', '@', ' '])
        || (host.contains(':') && !s.starts_with('['))
    {
        return Err(format!("{host:?} is not a host name or address"));
    }
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => return Err(format!("{port:?} is not a port (1-65535)")),
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_hosts_and_defaults() {
        let s = RouteSpec::parse("tcp://logs.example:514").unwrap();
        assert_eq!(s.transport, Transport::Tcp);
        assert_eq!((s.host.as_str(), s.port), ("logs.example", 514));
        assert_eq!((s.format, s.framing), (Format::Rfc5424, Framing::Octet));
        let s = RouteSpec::parse("udp://[::1]:5514?format=rfc3164").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("::1", 5514));
        assert_eq!(s.address(), "udp://[::1]:5514");
        let s = RouteSpec::parse("tcp://127.0.0.1:514?format=json").unwrap();
        assert_eq!(s.framing, Framing::Lf, "LF framing for the older formats");
        let s = RouteSpec::parse("tcp://127.0.0.1:514?format=raw&framing=octet").unwrap();
        assert_eq!((s.format, s.framing), (Format::Cat, Framing::Octet));
        let s = RouteSpec::parse("relp://h:2514?window=4").unwrap();
        assert_eq!(s.window, 4);
        let s = RouteSpec::parse("journal+https://logs:19532?ca=/ca.pem&priority=err").unwrap();
        assert_eq!(s.transport, Transport::JournalTls);
        assert_eq!(s.address(), "journal+https://logs:19532");
        assert!(s.transport.is_tls() && s.transport.acknowledges());
        let s = RouteSpec::parse("tcp://h:514?capture=1&priority=warning").unwrap();
        assert!(s.captured && s.filters.len() == 1);
        assert!(!RouteSpec::parse("tcp://h:514?capture=0").unwrap().captured);
        assert!(!RouteSpec::parse("tcp://h:514").unwrap().captured);
        let s = RouteSpec::parse("journal+http://[::1]:19532").unwrap();
        assert_eq!((s.transport, s.host.as_str()), (Transport::Journal, "::1"));
    }

    #[test]
    fn filters_and_tls_options() {
        let s = RouteSpec::parse(
            "tls://h:6514?ca=/etc/ca.pem&cert=/c.pem&key=/k.pem&name=logs&priority=err&source=onboot.*&grep=a%26b",
        )
        .unwrap();
        assert_eq!(
            s.tls.ca.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert_eq!(s.tls.name.as_deref(), Some("logs"));
        assert_eq!(s.filters.len(), 3);
        assert_eq!(s.filters[2], ("grep".into(), "a&b".into()));
        let f = s.filter();
        assert_eq!(f.severity, Some((0, 3)));
    }

    #[test]
    fn bad_routes_say_what_is_wrong() {
        for (url, says) in [
            ("logs.example:514", "SCHEME://"),
            ("http://h:80", "unknown transport"),
            ("tcp://h", "no :PORT"),
            ("tcp://h:0", "not a port"),
            ("tcp://h:99999", "not a port"),
            ("tcp://::1:514", "not a host"),
            ("tcp://h:514?format=xml", "format="),
            ("tcp://h:514?framing=nul", "framing="),
            ("udp://h:514?framing=lf", "tcp and tls only"),
            ("tcp://h:514?priority=loud", "priority"),
            ("tcp://h:514?grep=(", "grep"),
            ("tcp://h:514?colour=red", "unknown option"),
            ("tcp://h:514?ca=/x", "tls:// and journal+https:// only"),
            ("tls://h:514?cert=/x", "both cert= and key="),
            ("tcp://h:514?window=3", "relp:// only"),
            ("tcp://h:514?capture=yes please", "capture="),
            ("relp://h:514?window=0", "window="),
            ("journal+http://h:1?ca=/x", "journal+https://"),
            ("journal+http://h:1?format=json", "export format"),
            ("journal+https://h:1?framing=lf", "journal entry"),
            ("journal://h:1", "journal+http"),
        ] {
            let err = RouteSpec::parse(url).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
    }
}
