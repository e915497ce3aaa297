//! `logread --captures`: the daemon's list of captures as a table to read
//! (or, with `-o json`, as the daemon sent it).
//!
//! A trigger's source and message are what a sender wrote, so they are
//! escaped as every other line logread prints, and the message is cut to
//! keep one capture on one line; `logread --capture ID` shows it whole.

use serde_json::Value;

use crate::view::format::write_other_line;

/// The most characters of a trigger's message the table shows.
const MESSAGE_WIDTH: usize = 60;

const HEADINGS: [&str; 8] = [
    "ID",
    "TRIGGER TIME",
    "SOURCE",
    "SEQ",
    "ENTRIES",
    "BYTES",
    "STATE",
    "MESSAGE",
];

/// The table for the daemon's `{"captures": [...]}` reply, or `None` if
/// the reply is not one.
pub(super) fn table(reply: &Value) -> Option<String> {
    let captures = reply.get("captures")?.as_array()?;
    if captures.is_empty() {
        return Some("no captures held\n".into());
    }
    let rows: Vec<[String; 8]> = captures.iter().map(row).collect();
    let mut widths = HEADINGS.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for cells in std::iter::once(HEADINGS.map(str::to_owned)).chain(rows) {
        let line: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    Some(out)
}

fn row(c: &Value) -> [String; 8] {
    let number = |key: &str| c[key].as_u64().map_or("-".into(), |n| n.to_string());
    let trigger = &c["trigger"];
    let mut state = if c["complete"] == true {
        "complete".to_owned()
    } else {
        "open".to_owned()
    };
    for (flag, note) in [("start_cut", "start cut"), ("cut", "cut")] {
        if c[flag] == true {
            state.push_str(", ");
            state.push_str(note);
        }
    }
    [
        number("id"),
        trigger["time"].as_str().unwrap_or("-").to_owned(),
        escaped(trigger["source"].as_str().unwrap_or("-")),
        format!("{}..{}", number("first_seq"), number("last_seq")),
        number("entries"),
        number("bytes"),
        state,
        shortened(&escaped(trigger["msg"].as_str().unwrap_or("-"))),
    ]
}

/// `text` on one line, its controls escaped.
fn escaped(text: &str) -> String {
    let mut out = Vec::new();
    write_other_line(text, &mut out);
    out.pop();
    String::from_utf8_lossy(&out).into_owned()
}

fn shortened(text: &str) -> String {
    if text.chars().count() <= MESSAGE_WIDTH {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(MESSAGE_WIDTH - 3).collect();
    s.push_str("...");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_line_per_capture_with_its_text_escaped() {
        let reply = json!({ "captures": [{
            "id": 3, "first_seq": 10, "last_seq": 410, "entries": 401, "bytes": 9000,
            "complete": false, "cut": false, "start_cut": true,
            "trigger": { "seq": 210, "time": "2026-01-02T03:04:05Z",
                         "source": "app", "msg": "disk\x1b[2J on fire\nsecond line" },
        }]});
        let t = table(&reply).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 2, "{t}");
        assert!(lines[0].starts_with("ID  TRIGGER TIME"), "{t}");
        for cell in [
            "3",
            "2026-01-02T03:04:05Z",
            "app",
            "10..410",
            "401",
            "9000",
            "open, start cut",
        ] {
            assert!(lines[1].contains(cell), "{cell} in {t}");
        }
        assert!(
            !t.contains('\x1b') && lines[1].contains("disk\\x1b[2J on fire\\nsecond"),
            "{t}"
        );
        assert_eq!(
            table(&json!({ "captures": [] })).unwrap(),
            "no captures held\n"
        );
        assert!(table(&json!({ "error": "x" })).is_none());
    }
}
