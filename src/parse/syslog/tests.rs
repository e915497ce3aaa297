//! The syslog parser's tests: real clients' bytes, and the fast path
//! checked against syslog_loose.

use super::*;

const NOW: i64 = 1_795_391_994_000_000_000; // 2026-11-22T23:59:54Z

fn parse(raw: &[u8]) -> Parsed {
    SyslogParser::new("thishost", 8192).parse(raw, NOW, Input::Syslog, Origin::Local, None)
}

/// Who a record says sent it: host, app and pid, as written.
fn sender(r: &Record) -> [Option<&str>; 3] {
    [r.host.as_deref(), r.app.as_deref(), r.pid.as_deref()]
}

/// `raw` parsed, well formed: its record, checked to name `who` (host,
/// app, pid) as its sender and to say `msg`.
fn says(raw: &[u8], who: [Option<&str>; 3], msg: &str) -> Record {
    let p = parse(raw);
    let raw = String::from_utf8_lossy(raw);
    assert!(!p.malformed, "{raw:?}");
    assert_eq!(sender(&p.record), who, "{raw:?}");
    assert_eq!(p.record.msg, msg, "{raw:?}");
    p.record
}

#[test]
fn glibc_with_pid() {
    let p = parse(b"<30>Nov 21 23:40:10 ctag[4563]: hello 1");
    let r = p.record;
    assert!(!p.malformed);
    assert_eq!(r.facility, Some(3));
    assert_eq!(r.severity, Some(6));
    assert_eq!(r.app.as_deref(), Some("ctag"));
    assert_eq!(r.source, "ctag");
    assert_eq!(r.pid.as_deref(), Some("4563"));
    assert_eq!(r.host.as_deref(), Some("thishost"));
    assert_eq!(r.msg, "hello 1");
    let ts = r.timestamp.unwrap();
    assert_eq!((ts.year(), ts.month(), ts.day()), (2026, 11, 21));
}

#[test]
fn hostless_tag_is_the_app_on_local_sockets() {
    let who = [Some("thishost"), Some("mytag"), None];
    says(b"<13>Nov 21 23:39:54 mytag: msg here", who, "msg here");
}

#[test]
fn rfc3164_with_hostname() {
    says(
        b"<13>Nov 21 23:39:54 vm mytag: m",
        [Some("vm"), Some("mytag"), None],
        "m",
    );
}

#[test]
fn rfc5424_with_structured_data() {
    let raw = br#"<13>1 2026-11-21T23:39:54.708105+00:00 vm mytag 42 MID [ex@32473 k="a\"b\]c\\d"] the msg"#;
    let r = parse(raw).record;
    assert_eq!(sender(&r), [Some("vm"), Some("mytag"), Some("42")]);
    assert_eq!(r.msgid.as_deref(), Some("MID"));
    assert_eq!(r.sd.len(), 1);
    assert_eq!(r.sd[0].id, "ex@32473");
    assert_eq!(
        r.sd[0].params,
        vec![("k".to_owned(), r#"a"b]c\d"#.to_owned())]
    );
    assert_eq!(r.msg, "the msg");
    assert_eq!(
        r.timestamp.unwrap().to_rfc3339(),
        "2026-11-21T23:39:54.708105+00:00"
    );
}

/// Real lines, as a local sender (no host) and as a relay (with host)
/// would send them, plus awkward shapes.
fn differential_inputs() -> Vec<String> {
    let mut v = Vec::new();
    for file in ["Linux_2k.log", "OpenSSH_2k.log"] {
        let path = format!("{}/../shared/corpus/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for line in text.lines() {
            v.push(format!("<13>{line}"));
            // Without the host field: Mmm dd hh:mm:ss HOST rest.
            let fields: Vec<&str> = line.splitn(5, ' ').collect();
            if fields.len() == 5 {
                let (m, d, t, rest) = (fields[0], fields[1], fields[2], fields[4]);
                v.push(format!("<30>{m} {d} {t} {rest}"));
            }
        }
    }
    for odd in [
        "<13>Nov  1 00:00:00 t: x",
        "<13>Nov 21 23:40:10 t:  two spaces\t",
        "<13>Nov 21 23:40:10 t[]: empty pid",
        "<13>Nov 21 23:40:10 t[1]x: after",
        "<13>Nov 21 23:40:10 host t[1: open",
        "<13>Nov 21 23:40:10 - t: dash",
        "<13>Nov 21 23:40:10 h t: [sd x=\"1\"] y",
        "<13>Nov 21 23:40:10 h t:no space",
        "<13>Nov 21 23:40:10  h t: double",
        "<13>Nov 21 23:40:61 t: bad second",
        "<13>Feb 30 23:40:10 t: no such day",
        "<13>Feb 29 23:40:10 t: leap",
        "<13>nov 21 23:40:10 t: lower case month",
        "<13>Nov 21 23:40:10 a:b: colon",
        "<13>Nov 21 23:40:10 10.0.0.1 t[9]: ip host",
        "<13>Nov 21 23:40:10 h t(x)[9]: parens",
        "<13>Nov 21 23:40:10 t: ",
        "<13>Nov 21 23:40:10 h\tt: tab",
    ] {
        v.push(odd.to_owned());
    }
    v
}

#[test]
fn the_fast_path_agrees_with_syslog_loose() {
    let fast = SyslogParser::new("thishost", 8192);
    let mut slow = SyslogParser::new("thishost", 8192);
    slow.fast_path = false;
    let inputs = differential_inputs();
    let mut taken = 0;
    for input in &inputs {
        let raw = input.as_bytes();
        let a = fast.parse(raw, NOW, Input::Syslog, Origin::Local, None);
        let b = slow.parse(raw, NOW, Input::Syslog, Origin::Local, None);
        assert_eq!(a.record, b.record, "{input}");
        assert_eq!(a.malformed, b.malformed, "{input}");
        let after_pri = &input[input.find('>').unwrap() + 1..];
        let at = fast.minute(NOW);
        let memo = Cell::new(None);
        taken += usize::from(fast_3164(after_pri, at, &memo).is_some());
    }
    // The fast path must carry the real traffic, or it is no use.
    assert!(
        taken * 10 >= inputs.len() * 9,
        "fast path took {taken} of {}",
        inputs.len()
    );
}

#[test]
fn the_pid_is_kept_as_written() {
    let r = parse(b"<30>Nov 21 23:40:10 ctag[0042]: x").record;
    assert_eq!(r.pid.as_deref(), Some("0042"));
    let r = parse(b"<13>1 2026-11-21T23:39:54Z vm app 007 - - x").record;
    assert_eq!(r.pid.as_deref(), Some("007"));
    let r = parse(b"<13>1 2026-11-21T23:39:54Z vm app worker-3 - - x").record;
    assert_eq!(r.pid.as_deref(), Some("worker-3"));
}

#[test]
fn python_without_timestamp() {
    let p = parse(b"<148>python default format\0");
    assert!(!p.malformed);
    let r = p.record;
    assert_eq!((r.facility, r.severity), (Some(18), Some(4)));
    assert_eq!(r.msg, "python default format");
    assert_eq!(r.source, "syslog");
    assert!(r.timestamp.is_none());
}

#[test]
fn python_with_ident() {
    let who = [Some("thishost"), Some("myapp"), Some("77")];
    says(b"<11>myapp[77]: went wrong\0", who, "went wrong");
}

#[test]
fn feb_29_in_a_non_leap_year_still_parses() {
    let r = says(
        b"<30>Feb 29 12:00:00 leap: x",
        [Some("thishost"), Some("leap"), None],
        "x",
    );
    let ts = r.timestamp.unwrap();
    assert_eq!((ts.year(), ts.month(), ts.day()), (2024, 2, 29));
}

#[test]
fn december_read_in_january_is_last_year() {
    assert_eq!(resolve_year((12, 31, 23, 59, 59), 2027, 1), 2026);
    assert_eq!(resolve_year((1, 1, 0, 0, 0), 2026, 12), 2027);
    assert_eq!(resolve_year((6, 1, 0, 0, 0), 2026, 11), 2026);
}

#[test]
fn bom_nul_and_newlines_are_stripped() {
    let r = parse("<13>1 2026-11-21T23:39:54Z vm app - - - \u{feff}text\n".as_bytes()).record;
    assert_eq!(r.msg, "text");
    let r = parse(b"<13>Nov 21 23:40:10 bbtag: line\n").record;
    assert_eq!(r.msg, "line");
}

#[test]
fn fractions_of_3164_stamps() {
    assert_eq!(
        fraction_3164("Nov 22 00:26:48.925863 h t: m"),
        Some((15, 22, 925_863_000))
    );
    assert_eq!(
        fraction_3164("Nov  2 00:26:48.5 h"),
        Some((15, 17, 500_000_000))
    );
    assert_eq!(fraction_3164("Nov 22 00:26:48 h t: m"), None);
    assert_eq!(fraction_3164("Nov 22 00:26:48.x h"), None);
    assert_eq!(fraction_3164("Nov 22 00:26:48.1234567890 h"), None);
    assert_eq!(fraction_3164("Nov 22 00:26:48.12"), None);
    assert_eq!(fraction_3164("1 2026-11-22T00:26:48.12 h"), None);
    let r = parse(b"<13>Nov  2 00:26:48.5 mytag: m").record;
    assert_eq!(r.app.as_deref(), Some("mytag"));
    assert_eq!(r.timestamp.unwrap().timestamp_subsec_millis(), 500);
}

#[test]
fn octet_count_prefix_on_a_datagram() {
    says(
        b"29 <13>Nov 21 23:39:54 t: hi",
        [Some("thishost"), Some("t"), None],
        "hi",
    );
}

#[test]
fn no_pri_is_user_notice_and_malformed() {
    let p = parse(b"just text");
    assert!(p.malformed);
    assert_eq!((p.record.facility, p.record.severity), (Some(1), Some(5)));
    assert_eq!(p.record.msg, "just text");
}

#[test]
fn impossible_pri_keeps_the_raw_text() {
    for raw in ["<999>x", "<>x", "<-1>x", "<192>x", "<13"] {
        let p = parse(raw.as_bytes());
        assert!(p.malformed, "{raw}");
        assert_eq!(p.record.msg, raw);
    }
}

#[test]
fn rfc3164_text_starting_with_brackets_is_not_structured_data() {
    let raw = br#"<13>Nov 21 23:39:54 app: [id k="v"] rest"#;
    let r = says(
        raw,
        [Some("thishost"), Some("app"), None],
        r#"[id k="v"] rest"#,
    );
    assert!(r.sd.is_empty());
}

#[test]
fn invalid_utf8_is_escaped() {
    let raw = b"<13>Nov 21 23:39:54 app: bad \xff byte";
    says(raw, [Some("thishost"), Some("app"), None], "bad \\xff byte");
}

#[test]
fn long_text_is_cut_and_flagged() {
    let p = SyslogParser::new("h", 10).parse(
        "<13>Nov 21 23:39:54 app: ééééééééé".as_bytes(),
        NOW,
        Input::Syslog,
        Origin::Local,
        None,
    );
    assert!(p.record.truncated);
    assert_eq!(p.record.msg, "ééééé");
}

fn with_params(n: usize, value: &str, msg: &str) -> Vec<u8> {
    let params: String = (0..n).map(|i| format!(" p{i}=\"{value}\"")).collect();
    format!("<13>1 2026-11-21T23:39:54Z h app - - [x@1{params}] {msg}").into_bytes()
}

#[test]
fn structured_data_is_bounded_in_count() {
    let p = SyslogParser::new("h", 1 << 20).parse(
        &with_params(10_000, "v", "text"),
        NOW,
        Input::Syslog,
        Origin::Local,
        None,
    );
    let r = p.record;
    assert_eq!(r.sd.len(), 1);
    assert_eq!(r.sd[0].params.len(), MAX_SD_PARAMS);
    assert_eq!(r.sd[0].params[127], ("p127".into(), "v".into()));
    assert_eq!(r.msg, "text");
    assert!(r.truncated);
    let many_ids: String = (0..100).map(|i| format!("[e{i} k=\"v\"]")).collect();
    let r = parse(format!("<13>1 - h app - - {many_ids} m").as_bytes()).record;
    assert_eq!(r.sd.len(), MAX_SD_ELEMENTS);
    assert!(r.truncated);
}

#[test]
fn structured_data_and_text_share_the_length_limit() {
    let parse_with = |limit, raw: &[u8]| {
        SyslogParser::new("h", limit)
            .parse(raw, NOW, Input::Syslog, Origin::Local, None)
            .record
    };
    // [x@1] is 5 bytes, each ` pN="vvvv"` 10: two params and the
    // text fit in 5 + 20 + 4.
    let raw = with_params(2, "vvvv", "text");
    let r = parse_with(29, &raw);
    assert_eq!(
        (r.sd[0].params.len(), r.msg.as_str(), r.truncated),
        (2, "text", false)
    );
    let r = parse_with(28, &raw);
    assert_eq!(
        (r.sd[0].params.len(), r.msg.as_str(), r.truncated),
        (2, "tex", true)
    );
    let r = parse_with(18, &raw);
    assert_eq!(
        (r.sd[0].params.len(), r.msg.as_str(), r.truncated),
        (1, "tex", true)
    );
    let r = parse_with(4, &raw);
    assert!(r.sd.is_empty() && r.msg == "text" && r.truncated, "{r:?}");
    let r = parse_with(8192, &with_params(3000, &"v".repeat(300), "text"));
    assert!(r.truncated);
    assert!(sd_len(&r.as_ref().sd) + r.msg.len() <= 8192);
    assert_eq!(r.sd[0].params.len(), (8192 - 5) / 310);
}

/// What rsyslog's omuxsock and syslog-ng's unix-dgram destination send
/// (bytes captured from rsyslogd 8.2302 and syslog-ng 3.38).
mod forwarded {
    use super::*;

    fn at(raw: &[u8]) -> Record {
        let p = parse(raw);
        assert!(!p.malformed, "{:?}", String::from_utf8_lossy(raw));
        p.record
    }

    /// A message relayed from host web1 by `app[pid]`, saying `msg`.
    fn from_web1(raw: &[u8], app: &str, pid: &str, msg: &str) -> Record {
        says(raw, [Some("web1"), Some(app), Some(pid)], msg)
    }

    fn ts(r: &Record) -> String {
        r.timestamp
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }

    #[test]
    fn rsyslog_default_template_keeps_host_and_the_escaped_newline() {
        let r = from_web1(
            b"<156>Nov 22 00:28:25 web1 fwdtag[4242]: line1#012line2",
            "fwdtag",
            "4242",
            "line1#012line2",
        );
        assert_eq!((r.facility, r.severity), (Some(19), Some(4)));
        // rsyslog replaced the newline before it forwarded: `#012` is
        // what arrived, and could as well be literal text.
    }

    #[test]
    fn rsyslog_default_template_of_a_5424_message_has_no_colon() {
        from_web1(
            "<13>Nov 22 00:28:25 web1 fwd5[77] héllo five".as_bytes(),
            "fwd5",
            "77",
            "héllo five",
        );
    }

    #[test]
    fn rsyslog_protocol23_of_a_3164_message_has_a_double_space() {
        let r = from_web1(
            b"<156>1 2026-11-22T00:28:34+00:00 web1 fwdtag 4242 - -  line1#012line2\n",
            "fwdtag",
            "4242",
            "line1#012line2",
        );
        assert_eq!(r.msgid, None);
        assert!(r.sd.is_empty());
        assert_eq!(ts(&r), "2026-11-22T00:28:34Z");
    }

    #[test]
    fn rsyslog_protocol23_of_a_5424_message() {
        let r = from_web1(b"<165>1 2003-10-11T22:14:15.003000+02:00 web1 evntslog 1234 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] \xef\xbb\xbfAn application event\n", "evntslog", "1234", "An application event");
        assert_eq!((r.facility, r.severity), (Some(20), Some(5)));
        assert_eq!(r.msgid.as_deref(), Some("ID47"));
        assert_eq!(r.sd.len(), 1);
        assert_eq!(r.sd[0].id, "exampleSDID@32473");
        assert_eq!(r.sd[0].params.len(), 2);
        assert_eq!(ts(&r), "2003-10-11T22:14:15.003+02:00");
    }

    #[test]
    fn syslog_ng_syslog_protocol_with_bom_and_newline() {
        let r = from_web1(b"<13>1 2026-11-21T10:00:00.123000+02:00 web1 app 77 M2 [meta sequenceId=\"2\"] \xef\xbb\xbfbom text\n", "app", "77", "bom text");
        assert_eq!(r.msgid.as_deref(), Some("M2"));
        assert_eq!(r.sd[0].id, "meta");
        assert_eq!(ts(&r), "2026-11-21T10:00:00.123+02:00");
    }

    #[test]
    fn syslog_ng_syslog_protocol_keeps_inner_newlines() {
        let r = at(b"<13>1 2026-11-22T00:26:38+00:00 web1 nl - - [meta sequenceId=\"5\"] a\nb\n");
        assert_eq!(r.msg, "a\nb");
        assert_eq!(r.pid, None);
    }

    #[test]
    fn syslog_ng_legacy_format() {
        from_web1(
            b"<13>Nov 22 00:26:38 web1 fwdtag[1459]: via syslog-ng\n",
            "fwdtag",
            "1459",
            "via syslog-ng",
        );
    }

    #[test]
    fn syslog_ng_legacy_format_with_frac_digits() {
        let r = from_web1(
            "<13>Nov 22 00:26:48.925863 web1 fwd5[2193]: héllo five\n".as_bytes(),
            "fwd5",
            "2193",
            "héllo five",
        );
        assert_eq!(r.timestamp.unwrap().timestamp_subsec_micros(), 925863);
    }
}

#[test]
fn remote_origin_keeps_a_lone_field_as_host() {
    let p = SyslogParser::new("h", 100).parse(
        b"<13>1 2026-11-21T23:39:54Z - app - - - x",
        NOW,
        Input::Net,
        Origin::Remote,
        None,
    );
    assert_eq!(p.record.host, None);
    assert_eq!(p.record.app.as_deref(), Some("app"));
    let remote = |raw: &[u8]| {
        SyslogParser::new("h", 100)
            .parse(raw, NOW, Input::Net, Origin::Remote, None)
            .record
    };
    let r = remote(b"<13>Nov 21 23:39:54 web1 app: m");
    assert_eq!(
        (r.host.as_deref(), r.app.as_deref()),
        (Some("web1"), Some("app"))
    );
    let r = remote(b"<13>Nov 21 23:39:54 mytag: m");
    assert_eq!((r.host.as_deref(), r.app.as_deref()), (None, Some("mytag")));
    assert_eq!(r.msg, "m");
}
