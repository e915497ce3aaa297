//! Reading and releasing captures: the list (`logread --captures`, the
//! JSON dialect, `GET /captures`), one capture's entries in every format
//! and with every filter (`logread --capture ID`, `GET /captures/ID`), and
//! releasing one (`logread --release ID`, `POST /captures/ID/release`),
//! which needs the rights `--clear` needs. And what captures are for: the
//! entries around a trigger outlive a flood that takes everything else.

use std::time::Duration;

use crate::support::*;
use serde_json::Value;

use super::filters::curl;
use crate::support::captures::CAPTURING;

/// `logread ARGS`, which must succeed; its stdout.
fn logread_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.logread(args);
    assert_success(&out, &format!("logread {args:?}"));
    String::from_utf8(out.stdout).unwrap()
}

/// `logread ARGS`, which must fail with exit 1; its stderr.
fn logread_refused(d: &Daemon, args: &[&str]) -> String {
    let out = d.logread(args);
    assert_eq!(out.status.code(), Some(1), "logread {args:?}: {out:?}");
    String::from_utf8(out.stderr).unwrap()
}

/// The captures held, as `logread --captures --json` lists them.
fn captures(d: &Daemon) -> Vec<Value> {
    let out = logread_ok(d, &["--captures", "--json"]);
    let v: Value = serde_json::from_str(&out).expect("the list is one JSON object");
    v["captures"]
        .as_array()
        .expect("a list of captures")
        .clone()
}

/// Wait until capture `id` is complete (its window has ended); it.
fn wait_complete(d: &Daemon, id: u64) -> Value {
    let list = poll(
        &format!("capture {id} to complete"),
        Duration::from_secs(20),
        || captures(d),
        |l| l.iter().any(|c| c["id"] == id && c["complete"] == true),
    );
    list.into_iter().find(|c| c["id"] == id).unwrap()
}

/// `before` info lines, one `err` trigger, `after` info lines, all from
/// one socket at once; the messages, in order (the trigger's is
/// `{label}-trigger`).
fn send_window(d: &Daemon, label: &str, before: usize, after: usize) -> Vec<String> {
    let msgs: Vec<String> = (0..before + 1 + after)
        .map(|i| match i {
            i if i == before => format!("{label}-trigger"),
            i => format!("{label}-{i:03}"),
        })
        .collect();
    d.send_many(msgs.len(), |i| {
        let pri = if i == before { 11 } else { 14 };
        format!("<{pri}>app: {}", msgs[i])
    });
    msgs
}

/// The lines of `text` that are one of `msgs`' (those starting `label-`).
fn ours<'a>(text: &'a str, label: &str) -> Vec<&'a str> {
    let prefix = format!("{label}-");
    text.lines().filter(|l| l.starts_with(&prefix)).collect()
}

#[test]
fn a_capture_keeps_its_window_through_a_flood_that_takes_everything_else() {
    let d = Daemon::start(CAPTURING);
    let label = unique("window");
    let window = send_window(&d, &label, 200, 200);
    let c = wait_complete(&d, 1);
    assert_eq!(c["trigger"]["msg"], format!("{label}-trigger"));
    d.send_many(50_000, |i| format!("<14>flood: flood-{i}"));
    d.wait_for("the flood to end", |e| {
        e.last().is_some_and(|l| l["msg"] == "flood-49999")
    });

    let held = logread_ok(&d, &["--capture", "1", "-o", "cat"]);
    assert_eq!(ours(&held, &label), window, "the whole window, in order");
    assert!(!held.contains("flood-"), "nothing from after the window");
    // The rest is the daemon's own entries from within the window (its
    // start), nothing else.
    let entries: Vec<Value> = parse_lines(logread_ok(&d, &["--capture", "1", "--json"]).as_bytes());
    assert_eq!(entries.len(), held.lines().count());
    let others: Vec<&Value> = entries.iter().filter(|e| e["source"] != "app").collect();
    assert!(
        others.iter().all(|e| e["input"] == "internal"),
        "{others:?}"
    );
    assert_eq!(c["entries"], entries.len() as u64, "{c}");
    // The flood did take everything the ring held outside the capture.
    let all = d.dump();
    assert!(all.len() <= 1000, "{}", all.len());
    assert_eq!(
        all.iter().filter(|e| e["source"] == "app").count(),
        window.len(),
        "of app's lines, the window's are held (in the capture), no more"
    );
}

#[test]
fn without_a_capture_the_flood_takes_the_window() {
    let d = Daemon::start(&CAPTURING[..2]);
    let label = unique("lost");
    let window = send_window(&d, &label, 200, 200);
    d.wait_for("the window", |e| {
        e.iter().any(|v| v["msg"] == *window.last().unwrap())
    });
    d.send_many(50_000, |i| format!("<14>flood: flood-{i}"));
    d.wait_for("the flood to end", |e| {
        e.last().is_some_and(|l| l["msg"] == "flood-49999")
    });
    let left = logread_ok(&d, &["-o", "cat"]);
    assert!(
        ours(&left, &label).len() < window.len(),
        "the flood took the window: {} of {} lines left",
        ours(&left, &label).len(),
        window.len()
    );
    assert!(captures(&d).is_empty());
}

#[test]
fn captures_are_listed_as_json_and_as_a_table_with_their_trigger() {
    let d = Daemon::start(CAPTURING);
    let label = unique("list");
    send_window(&d, &label, 3, 2);
    let c = wait_complete(&d, 1);
    let trigger = &c["trigger"];
    assert_eq!(trigger["msg"], format!("{label}-trigger"));
    assert_eq!(trigger["source"], "app");
    assert_eq!(trigger["severity"], "err");
    let seq = trigger["seq"].as_u64().unwrap();
    let (first, last) = (
        c["first_seq"].as_u64().unwrap(),
        c["last_seq"].as_u64().unwrap(),
    );
    assert!(first <= seq && seq + 2 <= last, "{c}");
    assert_eq!(c["entries"], last - first + 1, "{c}");
    assert!(c["bytes"].as_u64().unwrap() > 0, "{c}");
    assert_eq!(
        (c["rule"].as_u64(), c["filter"].as_str()),
        (Some(0), Some("priority=err"))
    );
    assert_eq!(
        (c["cut"].as_bool(), c["start_cut"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(c["extended"], 0);
    // The window: 5 s before the trigger to 2 s after it.
    let [start, at, end] = [&c["start"], &trigger["time"], &c["end"]]
        .map(|t| chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap());
    assert_eq!((at - start).num_milliseconds(), 5000, "{c}");
    assert_eq!((end - at).num_milliseconds(), 2000, "{c}");

    // The same list in the JSON dialect and over HTTP.
    let raw: Value = serde_json::from_slice(&d.query_raw(b"{\"mode\":\"captures\"}\n")).unwrap();
    assert_eq!(raw["captures"], Value::Array(vec![c.clone()]));
    let (body, err) = curl(&d, &["http://localhost/captures"]);
    assert!(err.is_empty(), "{err}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), raw);
    assert_eq!(
        logread_ok(&d, &["--captures", "-o", "json"]),
        format!("{raw}\n")
    );

    let table = logread_ok(&d, &["--captures"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("ID  TRIGGER TIME"), "{table}");
    for cell in [
        trigger["time"].as_str().unwrap(),
        "app",
        &format!("{first}..{last}"),
        &c["entries"].to_string(),
        "complete",
        &format!("{label}-trigger"),
    ] {
        assert!(lines[1].contains(cell), "{cell:?} in\n{table}");
    }
    assert!(lines[1].starts_with("1 "), "{table}");
}

#[test]
fn a_capture_is_read_with_every_format_and_filter_of_a_dump_even_while_open() {
    // A window long enough that the capture stays open for the test.
    let d = Daemon::start(&[
        "--capture",
        "priority=err",
        "--capture-before",
        "60s",
        "--capture-after",
        "60s",
    ]);
    let label = unique("read");
    let before = unique("before");
    d.send(format!("<14>early: {before}").as_bytes());
    let msgs = send_window(&d, &label, 5, 4);
    d.wait_for("the window", |e| {
        e.iter().any(|v| v["msg"] == *msgs.last().unwrap())
    });
    let c = &captures(&d)[0];
    assert_eq!(c["complete"], false, "{c}");
    let all = parse_lines(logread_ok(&d, &["--capture", "1", "--json"]).as_bytes());
    let seqs: Vec<u64> = all.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    let want: Vec<u64> =
        (c["first_seq"].as_u64().unwrap()..=c["last_seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, want, "every entry of the capture so far, in order");
    assert_eq!(
        ours(&logread_ok(&d, &["--capture", "1", "-o", "cat"]), &label),
        msgs
    );
    assert!(
        all.iter().any(|e| e["msg"] == before),
        "within the 60 s before"
    );

    // A filter, a tail, a format, a cursor: as a dump takes them.
    let grep = logread_ok(&d, &["--capture", "1", "--grep=-00[34]$", "-o", "cat"]);
    assert_eq!(grep, format!("{label}-003\n{label}-004\n"));
    let errs = logread_ok(&d, &["--capture", "1", "-p", "err", "-o", "short"]);
    assert_eq!(errs.lines().count(), 1, "{errs}");
    assert!(errs.contains(&format!(" app: {label}-trigger")), "{errs}");
    let tail = logread_ok(&d, &["--capture", "1", "-n", "2", "-t", "app", "-o", "cat"]);
    assert_eq!(tail, format!("{}\n{}\n", msgs[8], msgs[9]));
    let trigger_seq = c["trigger"]["seq"].as_u64().unwrap().to_string();
    let after = logread_ok(
        &d,
        &["--capture", "1", "--after-seq", &trigger_seq, "-o", "cat"],
    );
    assert_eq!(ours(&after, &label), &msgs[6..]);

    // Entries after the capture's last are not in it, though it is open.
    let later = unique("later");
    d.send(format!("<14>late: {later}").as_bytes());
    d.entry_with_msg(&later);
    let grown = &captures(&d)[0];
    assert!(
        grown["last_seq"].as_u64() > c["last_seq"].as_u64(),
        "{grown}"
    );
    let now = logread_ok(&d, &["--capture", "1", "-o", "cat"]);
    assert!(now.ends_with(&format!("{later}\n")), "{now}");

    // The JSON dialect and HTTP read the same.
    let json =
        d.query_raw(b"{\"mode\":\"dump\",\"capture\":1,\"app\":\"app\",\"format\":\"cat\"}\n");
    assert_eq!(String::from_utf8(json).unwrap(), msgs.join("\n") + "\n");
    let (body, err) = curl(&d, &["http://localhost/captures/1?app=app&format=cat"]);
    assert!(err.is_empty(), "{err}");
    assert_eq!(body, msgs.join("\n") + "\n");
}

#[test]
fn unknown_captures_and_wrong_requests_are_errors_not_empty_answers() {
    let d = Daemon::start(CAPTURING);
    let err = logread_refused(&d, &["--capture", "7"]);
    assert!(err.contains("no capture 7 is held"), "{err}");
    let err = logread_refused(&d, &["--release", "7"]);
    assert!(err.contains("no capture 7 is held"), "{err}");
    let line = parse_lines(&d.query_raw(b"{\"mode\":\"dump\",\"capture\":7}\n"));
    assert!(
        line[0]["error"].as_str().unwrap().contains("no capture 7"),
        "{line:?}"
    );
    let line = parse_lines(&d.query_raw(b"{\"mode\":\"follow\",\"capture\":7}\n"));
    assert!(
        line[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot be followed"),
        "{line:?}"
    );
    let line = parse_lines(&d.query_raw(b"{\"mode\":\"release\"}\n"));
    assert!(
        line[0]["error"].as_str().unwrap().contains("capture"),
        "{line:?}"
    );

    let code = |args: &[&str]| {
        curl(
            &d,
            &[&["-o", "/dev/null", "-w", "%{http_code}"], args].concat(),
        )
        .0
    };
    assert_eq!(code(&["http://localhost/captures/7"]), "404");
    assert_eq!(
        code(&["-X", "POST", "http://localhost/captures/7/release"]),
        "404"
    );
    assert_eq!(code(&["http://localhost/captures/x"]), "404");
    assert_eq!(code(&["http://localhost/captures/7/release"]), "405");
    assert_eq!(code(&["-X", "POST", "http://localhost/captures"]), "405");
    assert_eq!(code(&["http://localhost/captures/7?bogus=1"]), "400");
    let (body, _) = curl(&d, &["http://localhost/captures/7"]);
    assert!(body.contains("no capture 7 is held"), "{body}");
    assert_eq!(d.stats()["captures"]["released"], 0);
}

#[test]
fn release_lets_a_capture_go_and_the_ring_says_who_asked() {
    let d = Daemon::start(CAPTURING);
    for id in 1..=2u64 {
        send_window(&d, &unique("release"), 1, 1);
        wait_complete(&d, id);
    }
    assert_eq!(logread_ok(&d, &["--release", "1"]), "released capture 1\n");
    let (body, err) = curl(&d, &["-X", "POST", "http://localhost/captures/2/release"]);
    assert!(err.is_empty(), "{err}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["released"].as_u64()),
        (Some(true), Some(2))
    );
    assert!(captures(&d).is_empty());
    assert_eq!(logread_ok(&d, &["--captures"]), "no captures held\n");
    let stats = d.stats();
    assert_eq!(stats["captures"]["released"], 2, "{stats}");
    assert_eq!(stats["captures"]["entries_pinned"], 0, "{stats}");
    let note = d.internal_with("capture 1 released on request of uid 0");
    assert_eq!(note["severity"], "notice");
    let err = logread_refused(&d, &["--capture", "1"]);
    assert!(err.contains("no capture 1 is held"), "{err}");
}

#[test]
fn release_needs_the_rights_of_clear_and_others_triggers_stay_unread() {
    let open_to_all = [CAPTURING, &["--query-mode", "0666"]].concat();
    let Some(d) = Daemon::start_for_others("releasing as another user", &open_to_all) else {
        return;
    };
    let label = unique("rights");
    send_window(&d, &label, 1, 1);
    wait_complete(&d, 1);
    let as_nobody = |args: &[&str]| logread_as(&d, NOBODY, NOBODY, &[], args);
    let out = as_nobody(&["--release", "1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("may pause, resume, clear, release captures"),
        "{err}"
    );
    let out = as_nobody(&["--clear"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "clear is refused alike: {out:?}"
    );
    assert_eq!(captures(&d).len(), 1, "still held");

    // It sees that there is a capture, but not root's trigger text, and
    // reads none of root's entries in it.
    let out = as_nobody(&["--captures", "--json"]);
    assert_success(&out, "logread --captures as nobody");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let trigger = &list["captures"][0]["trigger"];
    assert!(
        trigger["seq"].is_u64() && trigger["time"].is_string(),
        "{trigger}"
    );
    assert!(trigger.get("msg").is_none(), "{trigger}");
    let out = as_nobody(&["--capture", "1", "-o", "cat"]);
    assert_success(&out, "logread --capture 1 as nobody");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(logread_ok(&d, &["--release", "1"]), "released capture 1\n");
}

#[test]
fn a_hole_fair_eviction_left_in_the_window_is_told_not_counted_as_missed() {
    let d = Daemon::start(&[
        "--max-lines",
        "1000",
        "--capture",
        "priority=err",
        "--capture-before",
        "2s",
        "--capture-after",
        "1s",
    ]);
    // Eight sources fill most of the ring, each within its share (1/8),
    // before the window opens.
    for s in 0..8 {
        d.send_many(110, |i| format!("<14>old{s}: old {i}"));
    }
    d.wait_for("the old lines", |e| e.len() > 880);
    std::thread::sleep(Duration::from_millis(2500));
    // In the window: a flood from one source, which fair eviction takes
    // from its own oldest, inside the window, before the trigger.
    let label = unique("hole");
    d.send(format!("<14>quiet: {label}-before").as_bytes());
    d.send_many(300, |i| format!("<14>noisy: noisy {i}"));
    d.send(format!("<11>quiet: {label}-trigger").as_bytes());
    wait_complete(&d, 1);

    let got = parse_lines(logread_ok(&d, &["--capture", "1", "--json"]).as_bytes());
    let msgs: Vec<&str> = got.iter().map(|e| e["msg"].as_str().unwrap()).collect();
    let noisy = got.iter().filter(|e| e["source"] == "noisy").count();
    assert!(
        noisy < 300,
        "fair eviction took some of the window: {msgs:?}"
    );
    assert_eq!(msgs.first(), Some(&format!("{label}-before").as_str()));
    assert_eq!(msgs.last(), Some(&format!("{label}-trigger").as_str()));
    let note = format!("fair eviction took {} entries of noisy", 300 - noisy);
    assert_eq!(
        msgs.iter().filter(|m| m.starts_with(&note)).count(),
        1,
        "told once where the hole is: {msgs:?}"
    );
    // The hole was there before the reader asked: nothing it missed.
    assert!(!msgs.iter().any(|m| m.contains("overwritten")), "{msgs:?}");
    assert_eq!(d.stats()["queries"]["missed"], 0);
}

#[test]
fn after_sighup_changes_the_filters_a_capture_made_before_names_none() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("ringlogd.toml");
    let config = |filter: &str| {
        let text = format!("capture = [\"{filter}\"]\ncapture-after = \"1s\"\n");
        std::fs::write(&conf, text).unwrap();
    };
    config("priority=err");
    let d = Daemon::start(&["--config", conf.to_str().unwrap()]);
    d.send(b"<11>app: before the reload");
    wait_complete(&d, 1);
    config("app=deploy");
    signal(d.pid(), "HUP");
    d.internal_with("applied capture");
    d.send(b"<14>deploy: after the reload");
    wait_complete(&d, 2);
    let list = captures(&d);
    let filters: Vec<&Value> = list.iter().map(|c| &c["filter"]).collect();
    assert_eq!(
        filters,
        [&Value::Null, &Value::from("app=deploy")],
        "{list:?}"
    );
    assert_eq!(list[0]["trigger"]["msg"], "before the reload");
}
