//! What another local user can make a reader see: text that tries to pass
//! for a second entry or to drive the reader's terminal, and structured
//! data that tries to outgrow `--max-line-len` or repeat its names. The
//! sender is a real non-root uid (setpriv, so root is needed: under CI it is
//! required, elsewhere the test is skipped saying why); the readers are our
//! logread in every `-o` format and the daemon's own text formats over the
//! JSON dialect and HTTP (curl).

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;

/// The sender, a user with no account and no group.
const ATTACKER: u32 = 1001;

/// The time the forged record claims, which must never start a line.
const FORGED_TIME: &str = "2026-12-07T06:00:00";
const FORGED_TEXT: &str = "Accepted password for root from 10.0.0.1";

/// One datagram that tries to add an `sshd` line of its own, erase the
/// line it is on (ESC [2K), return the cursor (CR), and use a C1 CSI and
/// DEL.
fn forged_datagram(tag: &str) -> Vec<u8> {
    format!(
        "<14>evil: harmless {tag}\n{FORGED_TIME}.000000000Z;sshd;{FORGED_TEXT}\x1b[2K\rX\u{9b}2J\u{7f}"
    )
    .into_bytes()
}

const FORMATS: [&str; 7] = [
    "memlogd",
    "short",
    "short-iso",
    "cat",
    "rfc5424",
    "rfc3164",
    "json",
];

/// Whether `format` writes a newline in a message as an indented
/// continuation line (else the entry stays on one line).
fn continues_lines(format: &str) -> bool {
    matches!(format, "memlogd" | "short" | "short-iso" | "cat")
}

/// Check what a reader got in `format`: nothing that acts on a terminal,
/// one record per entry, the forged text only inside the attacker's entry.
fn assert_one_record_per_entry(what: &str, format: &str, out: &[u8], entries: usize, tag: &str) {
    let text = String::from_utf8(out.to_vec())
        .unwrap_or_else(|e| panic!("{what}: output is not UTF-8: {e}"));
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c.is_control() && c != '\n' && c != '\t')
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: raw control characters {bad:?} reach the reader:\n{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        !lines.iter().any(|l| l.starts_with(FORGED_TIME)),
        "{what}: a line starts with the forged record:\n{text}"
    );
    let starts = lines.iter().filter(|l| !l.starts_with(' ')).count();
    assert_eq!(
        starts, entries,
        "{what}: {entries} entries, so as many lines at column 0:\n{text}"
    );
    let at = lines
        .iter()
        .position(|l| l.contains(&format!("harmless {tag}")))
        .unwrap_or_else(|| panic!("{what}: the attacker's entry is missing:\n{text}"));
    let forged = if continues_lines(format) {
        let next = lines.get(at + 1).copied().unwrap_or_default();
        assert!(
            next.starts_with("  ") && next.trim_start().starts_with(FORGED_TIME),
            "{what}: the second line of the message is an indented continuation:\n{text}"
        );
        next
    } else {
        lines[at]
    };
    assert!(forged.contains(FORGED_TEXT), "{what}:\n{text}");
    if format != "json" {
        assert!(
            forged.ends_with(r"\x1b[2K\x0dX\x9b2J\x7f"),
            "{what}: the controls are written out: {forged}"
        );
    }
}

#[test]
fn a_forged_line_is_one_record_in_every_format_with_no_raw_control() {
    let Some(d) = Daemon::start_for_others("sending as another user", &[]) else {
        return;
    };
    let tag = unique("forge");
    send_datagram_as(ATTACKER, &d.log, &forged_datagram(&tag));
    let entries = d.wait_for("the forged entry", |e| {
        e.iter()
            .any(|v| v["msg"].as_str().unwrap_or("").contains(&tag))
    });
    let forged = entries
        .iter()
        .find(|v| v["msg"].as_str().unwrap().contains(&tag))
        .unwrap();
    assert_eq!(forged["peer"]["uid"], ATTACKER, "{forged}");
    let n = entries.len();

    // logread renders the daemon's JSON lines itself: memlogd's mode byte
    // (the default memlogd output) and, with a filter, the JSON dialect.
    let default = d.logread(&[]);
    assert!(default.status.success());
    assert_one_record_per_entry("logread", "memlogd", &default.stdout, n, &tag);
    for format in FORMATS {
        let out = d.logread(&["-o", format]);
        assert!(out.status.success(), "logread -o {format}");
        assert_one_record_per_entry(
            &format!("logread -o {format}"),
            format,
            &out.stdout,
            n,
            &tag,
        );
        let out = d.logread(&["-o", format, "-t", "evil"]);
        assert_one_record_per_entry(
            &format!("logread -o {format} -t evil"),
            format,
            &out.stdout,
            1,
            &tag,
        );
    }
    // The daemon's own text formats.
    for format in FORMATS {
        let request = format!("{{\"mode\":\"dump\",\"format\":\"{format}\"}}\n");
        let out = d.query_raw(request.as_bytes());
        assert_one_record_per_entry(&format!("JSON dialect {format}"), format, &out, n, &tag);
        let out = Command::new(require("curl"))
            .args(["-sS", "--fail", "--unix-socket"])
            .arg(&d.query)
            .arg(format!("http://localhost/logs?format={format}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "curl: {:?}", out);
        assert_one_record_per_entry(&format!("HTTP {format}"), format, &out.stdout, n, &tag);
    }
}

#[test]
fn header_fields_cannot_carry_controls_or_separators() {
    let d = Daemon::start(&[]);
    // An RFC 5424 header holds only printable ASCII, but an fd's name is
    // whatever its sender wrote.
    let tag = unique("field");
    let mut w = d.pass_socketpair(&format!("svc;x\x1b[2K\n{FORGED_TIME}"));
    writeln!(w, "{tag}").unwrap();
    drop(w);
    let n = d
        .wait_for("the line", |e| e.iter().any(|v| v["msg"] == tag))
        .len();
    for format in FORMATS {
        let out = d.logread(&["-o", format]);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "-o {format}: {text}"
        );
        assert_eq!(text.lines().count(), n, "-o {format}: {text}");
    }
    let memlogd = String::from_utf8(d.logread(&[]).stdout).unwrap();
    assert!(
        memlogd.contains(&format!(r";svc\;x\x1b[2K\x0a{FORGED_TIME};{tag}")),
        "{memlogd}"
    );
}

#[test]
fn a_kernel_message_with_continuation_lines_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let kmsg = dir.path().join("kmsg");
    // /dev/kmsg writes a newline inside a record as \x0a.
    fs::write(
        &kmsg,
        "4,100,5000,-;WARNING: CPU: 0 PID: 1 at drivers/foo.c:12 foo+0x1/0x2\\x0aCall Trace:\\x0a <TASK>\\x0a  dump_stack+0x1\n",
    )
    .unwrap();
    let d = Daemon::start_with_kmsg(&["--kmsg", kmsg.to_str().unwrap()]);
    d.wait_for("the kernel record", |e| {
        e.iter().any(|v| v["input"] == "kmsg")
    });
    for format in ["short", "memlogd", "short-iso", "cat"] {
        let out = d.logread(&["-k", "-o", format]);
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "-o {format}:\n{text}");
        let column = lines[0].find("WARNING: CPU").unwrap();
        let indent = if format == "cat" { 2 } else { column };
        assert!(indent > 0);
        for (line, want) in lines[1..]
            .iter()
            .zip(["Call Trace:", " <TASK>", "  dump_stack+0x1"])
        {
            assert_eq!(
                *line,
                format!("{}{want}", " ".repeat(indent)),
                "-o {format}: each continuation under the message:\n{text}"
            );
        }
    }
    let rfc = String::from_utf8(d.logread(&["-k", "-o", "rfc5424"]).stdout).unwrap();
    assert!(
        rfc.ends_with("foo+0x1/0x2\\nCall Trace:\\n <TASK>\\n  dump_stack+0x1\n"),
        "{rfc}"
    );
}

/// Read JSON lines with Python's json, failing on a duplicate key; the
/// number of lines read.
fn python_reads_json_lines(out: &[u8]) -> usize {
    const CHECK: &str = "import collections, json, sys\n\
        def no_duplicates(pairs):\n\
        \x20   repeated = [k for k, n in collections.Counter(k for k, _ in pairs).items() if n > 1]\n\
        \x20   if repeated:\n\
        \x20       sys.exit('duplicate keys: %r' % repeated[:5])\n\
        \x20   return dict(pairs)\n\
        n = 0\n\
        for line in sys.stdin:\n\
        \x20   json.loads(line, object_pairs_hook=no_duplicates)\n\
        \x20   n += 1\n\
        print(n)";
    let mut child = Command::new(require("python3"))
        .args(["-c", CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(out).unwrap();
    let done = child.wait_with_output().unwrap();
    assert_success(&done, "python3 json");
    String::from_utf8(done.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

const MAX_LINE_LEN: usize = 2048;

#[test]
fn structured_data_is_bounded_and_repeated_names_are_kept() {
    let Some(d) = Daemon::start_for_others(
        "sending as another user",
        &["--max-line-len", &MAX_LINE_LEN.to_string()],
    ) else {
        return;
    };
    let truncated_before = d.stats()["inputs"]["syslog"]["truncated"].as_u64().unwrap();
    let big = unique("tenk");
    let params: String = (0..10_000).map(|i| format!(" p{i}=\"v{i}\"")).collect();
    let datagram = format!("<13>1 2026-12-07T06:00:00Z h app - - [big@1{params}] {big}");
    assert!(datagram.len() > 100_000);
    send_datagram_as(ATTACKER, &d.log, datagram.as_bytes());
    let repeated = unique("repeated");
    send_datagram_as(
        ATTACKER,
        &d.log,
        format!(
            "<13>1 - h app - - [origin ip=\"10.0.0.1\" software=\"x\" ip=\"10.0.0.2\"][origin ip=\"10.0.0.3\"][meta a=\"1\"] {repeated}"
        )
        .as_bytes(),
    );
    d.entry_with_msg(&big);
    d.entry_with_msg(&repeated);

    let mut readings = vec![
        ("logread --json", d.logread(&["--json"]).stdout),
        ("memlogd mode 0", d.query_raw(&[0])),
        ("JSON dialect", d.query_raw(b"{\"mode\":\"dump\"}\n")),
    ];
    readings.push((
        "logread --json -t app",
        d.logread(&["--json", "-t", "app"]).stdout,
    ));
    for (what, out) in &readings {
        assert!(python_reads_json_lines(out) >= 2, "{what}");
    }
    let entries = parse_lines(&readings[0].1);
    let find = |msg: &str| entries.iter().find(|e| e["msg"] == msg).unwrap().clone();

    let e = find(&big);
    assert_eq!(e["truncated"], true, "{e}");
    let sd = e["sd"]["big@1"].as_object().unwrap();
    assert!(
        !sd.is_empty() && sd.len() <= 128,
        "{} params kept",
        sd.len()
    );
    assert_eq!(sd["p0"], "v0", "the first params are the ones kept");
    let sd_bytes: usize = 7 + sd
        .iter()
        .map(|(k, v)| k.len() + v.as_str().unwrap().len() + 4)
        .sum::<usize>();
    assert!(
        sd_bytes + big.len() <= MAX_LINE_LEN,
        "structured data and text within --max-line-len: {sd_bytes} + {}",
        big.len()
    );
    let line = readings[0]
        .1
        .split(|&b| b == b'\n')
        .find(|l| String::from_utf8_lossy(l).contains(&big))
        .unwrap();
    assert!(
        line.len() < MAX_LINE_LEN + 1024,
        "the entry as read is {} bytes",
        line.len()
    );
    let truncated_after = d.stats()["inputs"]["syslog"]["truncated"].as_u64().unwrap();
    assert_eq!(truncated_after, truncated_before + 1, "counted truncated");

    let e = find(&repeated);
    assert_eq!(e.get("truncated"), None, "{e}");
    assert_eq!(
        e["sd"]["origin"]["ip"],
        serde_json::json!(["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        "{e}"
    );
    assert_eq!(e["sd"]["origin"]["software"], "x");
    assert_eq!(e["sd"]["meta"]["a"], "1");
    // Every value reaches the text formats too.
    let rfc = String::from_utf8(d.logread(&["-o", "rfc5424", "-t", "app"]).stdout).unwrap();
    let line = rfc.lines().find(|l| l.ends_with(&repeated)).unwrap();
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        assert!(line.contains(&format!("ip=\"{ip}\"")), "{line}");
    }
}

#[test]
fn counters_name_a_source_without_raw_controls() {
    let Some(d) = Daemon::start_for_others("sending as another user", &[]) else {
        return;
    };
    let tag = unique("named");
    // A tag is any run of bytes up to `[`, `:` or a space: C1 CSI and DEL
    // included.
    send_datagram_as(
        ATTACKER,
        &d.log,
        format!("<14>ev\u{9b}2J\u{7f}il: {tag}").as_bytes(),
    );
    let e = d.entry_with_msg(&tag);
    assert_eq!(e["source"], "ev\u{9b}2J\u{7f}il", "{e}");
    let curl = Command::new(require("curl"))
        .args(["-sS", "--fail", "--unix-socket"])
        .arg(&d.query)
        .arg("http://localhost/stats")
        .output()
        .unwrap();
    for (what, out) in [
        ("logread --stats", d.logread(&["--stats"]).stdout),
        ("JSON dialect stats", d.query_raw(b"{\"mode\":\"stats\"}\n")),
        ("HTTP /stats", curl.stdout),
    ] {
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r"ev\u009b2J\u007fil"),
            "{what}: the source is named, escaped: {text}"
        );
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{what}: {text:?}"
        );
    }
}
