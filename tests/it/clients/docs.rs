//! The man pages and shell completions: generated from the same clap
//! definitions as the programs, so every flag is there; the pages render
//! with groff without a warning, and bash completes the flags.

use std::process::Command;

use crate::support::*;
use ringlogd::docs;

#[test]
fn every_page_renders_cleanly_and_lists_every_flag() {
    let dir = tempfile::tempdir().unwrap();
    let files = docs::write_all(dir.path()).unwrap();
    assert_eq!(
        files.len(),
        12,
        "3 man pages and 3 x 3 completions: {files:?}"
    );
    for p in docs::programs() {
        let name = p.command.get_name().to_owned();
        let page = dir.path().join("man").join(format!("{name}.{}", p.section));
        let out = Command::new(require("groff"))
            .args(["-man", "-Tutf8", "-ww", "-P-cbou"])
            .arg(&page)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{name}: {stderr}"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("SYNOPSIS") && text.contains("EXIT STATUS"),
            "{text}"
        );
        for arg in p.command.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    text.contains(&format!("--{long}")),
                    "{name}.{} lacks --{long}",
                    p.section
                );
            }
        }
    }
    let page = std::fs::read_to_string(dir.path().join("man/ringlogd.8")).unwrap();
    for section in ["CONFIGURATION", "SOCKET ACTIVATION", "SIGNALS", "FILES"] {
        assert!(page.contains(&format!(".SH \"{section}\"")), "{section}");
    }
}

/// What bash offers after `words`, the last being the one completed.
fn bash_complete(script: &std::path::Path, words: &[&str]) -> Vec<String> {
    let bash = require("bash");
    let program = words[0];
    let line = words.join(" ");
    let out = Command::new(bash)
        .arg("-c")
        .arg(format!(
            "source '{}'; COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; _{program} {program} '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            words.len() - 1,
            words[words.len() - 1],
            words[words.len() - 2],
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_the_flags_of_each_program() {
    let dir = tempfile::tempdir().unwrap();
    docs::write_all(dir.path()).unwrap();
    let bash = dir.path().join("completions/bash");
    let got = bash_complete(&bash.join("ringlogd"), &["ringlogd", "--max-l"]);
    assert_eq!(got, ["--max-lines", "--max-line-len"]);
    let got = bash_complete(&bash.join("ringlogd"), &["ringlogd", "--check"]);
    assert_eq!(got, ["--check-config"]);
    let got = bash_complete(&bash.join("logread"), &["logread", "--prio"]);
    assert_eq!(got, ["--priority"]);
    let got = bash_complete(&bash.join("logwrite"), &["logwrite", "--na"]);
    assert_eq!(got, ["--name"]);
}
