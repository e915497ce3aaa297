//! The configuration file, and how it meets the command line.
//!
//! The file is TOML whose keys are the daemon's long flags (`max-lines =
//! 5000`, `syslog-socket = ["/dev/log"]`, `no-kmsg = true`). Each key is
//! turned into the flag it names and checked by that flag's own parser, so
//! a value means exactly what it means on the command line; a key that is
//! not a flag, a value of the wrong type, or one the flag refuses is an
//! error naming the file, the line and column, and the key. The whole file
//! is checked before anything is refused, so every mistake in it is
//! reported at once, one per line, in file order.
//!
//! The command line wins: a flag given there drops the file's key (and the
//! keys it conflicts with, so `--no-kmsg` beats a file's `kmsg`), and the
//! rest of the file is applied as if its flags came first. The [`Loader`]
//! keeps the command line, so SIGHUP can read the file again and still let
//! the command line win.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{go_style_args, DaemonArgs, Settings, NOT_IN_FILE};

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    CommandLine,
    /// The configuration file, at this line.
    File(usize),
    Default,
}

/// The daemon's command line, kept so the configuration can be loaded (and
/// loaded again on SIGHUP) with the command line winning each time.
#[derive(Clone, Debug)]
pub struct Loader {
    /// The arguments, Go-style forms already rewritten.
    argv: Vec<OsString>,
    cli: ArgMatches,
    config: Option<PathBuf>,
}

/// The settings in force, and where each came from.
#[derive(Debug)]
pub struct Loaded {
    pub args: DaemonArgs,
    pub settings: Settings,
    /// By key (long flag name); keys at their default are absent.
    pub origins: BTreeMap<String, Origin>,
    pub config: Option<PathBuf>,
}

impl Loaded {
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).copied().unwrap_or(Origin::Default)
    }
}

/// One key of the file, as the flag arguments it stands for.
struct Entry {
    key: String,
    /// Where the key starts: a byte offset, and its line.
    at: usize,
    line: usize,
    /// `--key=value` (once per value) or `--key`.
    args: Vec<OsString>,
}

impl Loader {
    /// The process's command line; on a usage error clap prints it and
    /// exits 2.
    pub fn from_env() -> Loader {
        Loader::try_from_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    pub fn try_from_args(args: impl IntoIterator<Item = OsString>) -> Result<Loader, clap::Error> {
        let cmd = super::command();
        let argv = go_style_args(args, &cmd);
        let cli = cmd.try_get_matches_from(&argv)?;
        let config = cli.get_one::<PathBuf>("config").cloned();
        Ok(Loader { argv, cli, config })
    }

    /// The file `--config` names, if any.
    pub fn config_path(&self) -> Option<&Path> {
        self.config.as_deref()
    }

    /// Whether the command line asked for `--check-config`.
    pub fn check_only(&self) -> bool {
        self.cli.get_flag("check_config")
    }

    /// Whether the command line asked for `--reexec`.
    pub fn reexec_only(&self) -> bool {
        self.cli.get_flag("reexec")
    }

    /// Read the configuration file (if any) and merge it under the command
    /// line. Errors name the file, line, column and key at fault, one line
    /// per mistake (`FILE:LINE:COL: ...`), every mistake of the file.
    pub fn load(&self) -> Result<Loaded, String> {
        let mut cmd = super::command();
        cmd.build();
        let mut origins = BTreeMap::new();
        let mut file_args = Vec::new();
        // The file's keys in force, each with its place in the file.
        let mut kept: Vec<(String, Vec<OsString>)> = Vec::new();
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path).map_err(|e| {
                format!("cannot read the configuration file {}: {e}", path.display())
            })?;
            let entries = parse(&text, &cmd).map_err(|mistakes| {
                mistakes
                    .iter()
                    .map(|m| format!("{}: {}", place(&text, m.at, path), m.what))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            for entry in entries {
                let arg = long_arg(&cmd, &entry.key).expect("parse only returns known keys");
                if self.on_command_line(arg)
                    || cmd
                        .get_arguments()
                        .any(|other| conflict(&cmd, arg, other) && self.on_command_line(other))
                {
                    continue;
                }
                file_args.extend(entry.args.iter().cloned());
                kept.push((place(&text, entry.at, path), entry.args));
                origins.insert(entry.key, Origin::File(entry.line));
            }
        }
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                if self.on_command_line(arg) {
                    origins.insert(long.to_owned(), Origin::CommandLine);
                }
            }
        }
        let mut argv = vec![self.argv0()];
        argv.extend(file_args);
        argv.extend(self.argv.iter().skip(1).cloned());
        // What no single key can break: what flags need together.
        let matches = cmd
            .clone()
            .try_get_matches_from(argv)
            .map_err(|e| self.blame(&cmd, &kept, &e))?;
        let args =
            DaemonArgs::from_arg_matches(&matches).map_err(|e| first_line(&e.to_string()))?;
        Ok(Loaded {
            settings: args.settings(),
            args,
            origins,
            config: self.config.clone(),
        })
    }

    fn argv0(&self) -> OsString {
        self.argv
            .first()
            .cloned()
            .unwrap_or_else(|| OsString::from("ringlogd"))
    }

    /// clap's objection `e` to the merged arguments, placed at the file's
    /// keys that cause it: each kept key that draws the same objection
    /// with the command line alone.
    fn blame(&self, cmd: &Command, kept: &[(String, Vec<OsString>)], e: &clap::Error) -> String {
        let why = first_paragraph(&e.to_string());
        let culprits: Vec<String> = kept
            .iter()
            .filter(|(_, args)| {
                let mut argv = vec![self.argv0()];
                argv.extend(args.iter().cloned());
                argv.extend(self.argv.iter().skip(1).cloned());
                cmd.clone()
                    .try_get_matches_from(argv)
                    .is_err_and(|alone| alone.kind() == e.kind())
            })
            .map(|(place, _)| format!("{place}: {why}"))
            .collect();
        if culprits.is_empty() {
            why
        } else {
            culprits.join("\n")
        }
    }

    fn on_command_line(&self, arg: &Arg) -> bool {
        self.cli.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
    }
}

/// Whether `a` and `b` cannot be given together (clap records a conflict
/// on one side only). `cmd` must be built.
fn conflict(cmd: &Command, a: &Arg, b: &Arg) -> bool {
    let lists = |x: &Arg, y: &Arg| {
        cmd.get_arg_conflicts_with(x)
            .iter()
            .any(|c| c.get_id() == y.get_id())
    };
    lists(a, b) || lists(b, a)
}

/// The flag whose long name is `key`, if the file may set it.
fn long_arg<'a>(cmd: &'a Command, key: &str) -> Option<&'a Arg> {
    if NOT_IN_FILE.contains(&key) {
        return None;
    }
    cmd.get_arguments().find(|a| a.get_long() == Some(key))
}

/// The keys the file accepts: every long flag that is a setting.
pub fn keys() -> Vec<String> {
    super::command()
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !NOT_IN_FILE.contains(l))
        .map(str::to_owned)
        .collect()
}

/// A mistake in the file: where it starts (a byte offset) and what it is.
#[derive(Debug)]
struct Mistake {
    at: usize,
    what: String,
}

impl Mistake {
    fn new(at: usize, what: impl Into<String>) -> Mistake {
        Mistake {
            at,
            what: what.into(),
        }
    }
}

/// The file's keys as flag arguments, in file order, each value checked by
/// its flag's parser. On error, every mistake of the file in file order:
/// TOML syntax, unknown keys (a `[section]` is one), values of the wrong
/// type or that the flag refuses, keys that conflict.
fn parse(text: &str, cmd: &Command) -> Result<Vec<Entry>, Vec<Mistake>> {
    let (table, syntax) = DeTable::parse_recoverable(text);
    let mut mistakes: Vec<Mistake> = syntax
        .iter()
        .map(|e| {
            Mistake::new(
                e.span().map_or(0, |s| s.start),
                e.message().trim_end().replace('\n', " "),
            )
        })
        .collect();
    // A line with bad syntax is reported once, for its syntax.
    let bad_lines: Vec<usize> = mistakes.iter().map(|m| line_of(text, m.at)).collect();
    // Each value is judged alone, as the flag's parser sees it; what flags
    // need together is judged once the whole file is in.
    let alone = cmd
        .clone()
        .mut_args(|a| a.requires(clap::builder::Resettable::Reset));
    let mut items: Vec<_> = table.get_ref().iter().collect();
    items.sort_by_key(|(k, _)| k.span().start);
    let mut entries: Vec<Entry> = Vec::new();
    for (key, value) in items {
        let line = line_of(text, key.span().start);
        if bad_lines.contains(&line) {
            continue;
        }
        let name: &str = key.get_ref();
        let Some(arg) = long_arg(cmd, name) else {
            mistakes.push(Mistake::new(
                key.span().start,
                format!("unknown key `{name}`{}", key_hint(name, value)),
            ));
            continue;
        };
        let args = match flag_args(text, &alone, arg, name, value) {
            Ok(args) => args,
            Err(mut bad) => {
                mistakes.append(&mut bad);
                continue;
            }
        };
        // Two keys the command line could not combine either (a `false`
        // sets nothing, so conflicts with nothing).
        for earlier in entries
            .iter()
            .filter(|e| !e.args.is_empty() && !args.is_empty())
        {
            let other = long_arg(cmd, &earlier.key).expect("a known key");
            if conflict(cmd, arg, other) {
                mistakes.push(Mistake::new(
                    key.span().start,
                    format!(
                        "{name} cannot be set together with {} (line {})",
                        earlier.key, earlier.line
                    ),
                ));
            }
        }
        entries.push(Entry {
            key: name.to_owned(),
            at: key.span().start,
            line,
            args,
        });
    }
    if mistakes.is_empty() {
        Ok(entries)
    } else {
        mistakes.sort_by_key(|m| m.at);
        Err(mistakes)
    }
}

/// `value` for flag `arg` as command-line arguments; every value of a list
/// is checked.
fn flag_args(
    text: &str,
    cmd: &Command,
    arg: &Arg,
    name: &str,
    value: &Spanned<DeValue>,
) -> Result<Vec<OsString>, Vec<Mistake>> {
    match arg.get_action() {
        ArgAction::SetTrue => match value.get_ref() {
            DeValue::Boolean(true) => Ok(vec![OsString::from(format!("--{name}"))]),
            DeValue::Boolean(false) => Ok(vec![]),
            _ => Err(vec![Mistake::new(
                value.span().start,
                format!("{name} = {}: expects true or false", raw(text, value)),
            )]),
        },
        ArgAction::Append => {
            let items: Vec<&Spanned<DeValue>> = match value.get_ref() {
                DeValue::Array(a) => a.iter().collect(),
                _ => vec![value],
            };
            let (good, bad): (Vec<_>, Vec<_>) = items
                .into_iter()
                .map(|v| flag_value(text, cmd, name, v))
                .partition(Result::is_ok);
            if bad.is_empty() {
                Ok(good.into_iter().filter_map(Result::ok).collect())
            } else {
                Err(bad.into_iter().filter_map(Result::err).collect())
            }
        }
        _ => Ok(vec![
            flag_value(text, cmd, name, value).map_err(|m| vec![m])?
        ]),
    }
}

/// A `[[capture]]` table as the filter `--capture` takes: every key a
/// condition (`priority = "err"` is `priority=err`).
fn capture_filter(t: &DeTable) -> Result<String, String> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in t.iter() {
        let key: &str = k.get_ref();
        match v.get_ref() {
            DeValue::String(s) => query.append_pair(key, s),
            _ => return Err(format!("capture.{key}: expects a string")),
        };
    }
    Ok(query.finish())
}

/// A `[[route]]` table as the URL `--route` takes: `url` plus every other
/// key as a query option (`priority = "err"` is `?priority=err`).
fn route_url(t: &DeTable) -> Result<String, String> {
    let mut url = None;
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in t.iter() {
        let key: &str = k.get_ref();
        let value = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| format!("route.{key}: too large"))?
                .to_string(),
            _ => return Err(format!("route.{key}: expects a string or a whole number")),
        };
        if key == "url" {
            url = Some(value);
        } else {
            query.append_pair(key, &value);
        }
    }
    let url = url.ok_or("a [[route]] table needs url = \"SCHEME://HOST:PORT\"")?;
    let query = query.finish();
    Ok(match (query.is_empty(), url.contains('?')) {
        (true, _) => url,
        (false, true) => format!("{url}&{query}"),
        (false, false) => format!("{url}?{query}"),
    })
}

/// One scalar value as `--name=value`, once the flag's parser accepts it.
fn flag_value(
    text: &str,
    cmd: &Command,
    name: &str,
    value: &Spanned<DeValue>,
) -> Result<OsString, Mistake> {
    let bad = |why: &str| {
        Mistake::new(
            value.span().start,
            format!("{name} = {}: {why}", raw(text, value)),
        )
    };
    let s = match value.get_ref() {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .map_err(|_| bad("too large"))?
            .to_string(),
        // source-share = 0.125
        DeValue::Float(f) if name == "source-share" => f.to_string(),
        DeValue::Array(_) => return Err(bad("takes one value, not a list")),
        // `[[route]]`: a table of the URL's parts, spelled as its options.
        DeValue::Table(t) if name == "route" => route_url(t).map_err(|e| bad(&e))?,
        // `[[capture]]`: a table of the filter's keys.
        DeValue::Table(t) if name == "capture" => capture_filter(t).map_err(|e| bad(&e))?,
        DeValue::Table(_) => return Err(bad("takes a value, not a table")),
        _ => return Err(bad("expects a string or a whole number")),
    };
    let flag = OsString::from(format!("--{name}={s}"));
    // The flag alone on a command line: its own parser judges the value.
    cmd.clone()
        .try_get_matches_from([OsStr::new("ringlogd"), &flag])
        .map_err(|e| {
            use std::error::Error;
            let why = e
                .source()
                .map(|s| s.to_string())
                .unwrap_or_else(|| first_line(&e.to_string()));
            bad(&why)
        })?;
    Ok(flag)
}

/// A suggestion for a key that is not one. A table is a `[section]`
/// header (or `key.sub = ...`): the file has none.
fn key_hint(key: &str, value: &Spanned<DeValue>) -> String {
    if let DeValue::Table(t) = value.get_ref() {
        let mut inside: Vec<&str> = t.iter().map(|(k, _)| k.get_ref().as_ref()).collect();
        inside.truncate(3);
        return format!(
            " (the file has no sections: every key goes at the top, before any [table]; here: {})",
            inside.join(", ")
        );
    }
    let dashed = key.replace('_', "-");
    if dashed != key && long_arg(&super::command(), &dashed).is_some() {
        return format!(" (did you mean `{dashed}`? keys are spelled as the flags are)");
    }
    " (the keys are ringlogd's long flags, as `ringlogd --help` lists them)".to_owned()
}

/// The text of `value` as written in the file.
fn raw<'a>(text: &'a str, value: &Spanned<DeValue>) -> &'a str {
    text.get(value.span()).unwrap_or("?")
}

/// `FILE:LINE:COLUMN` of byte offset `at`, as compilers name a place.
fn place(text: &str, at: usize, path: &Path) -> String {
    let (line, column) = line_column(text, at);
    format!("{}:{line}:{column}", path.display())
}

/// 1-based line number of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    line_column(text, at).0
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// clap's error text without its "error: " prefix and its usage lines.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s);
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// clap's error up to its first blank line, as one line: a message whose
/// first line ends in a colon goes on in the lines below it.
fn first_paragraph(s: &str) -> String {
    let text: Vec<&str> = s
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let joined = text.join(" ");
    joined.strip_prefix("error: ").unwrap_or(&joined).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::multiline;
    use std::io::Write;

    fn load(file: &str, cli: &[&str]) -> Result<Loaded, String> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(file.as_bytes()).unwrap();
        let mut argv = vec!["ringlogd", "--config", f.path().to_str().unwrap()];
        argv.extend_from_slice(cli);
        let loader = Loader::try_from_args(argv.iter().map(OsString::from)).unwrap();
        // Name the file the same in every message.
        loader
            .load()
            .map_err(|e| e.replace(f.path().to_str().unwrap(), "FILE"))
    }

    #[test]
    fn route_tables_are_routes() {
        let l = load(
            "[[route]]\nurl = \"relp://127.0.0.1:2514\"\npriority = \"err\"\nwindow = 64\n\n[[route]]\nurl = \"udp://127.0.0.1:514?format=rfc3164\"\nsource = \"onboot.*\"\n",
            &[],
        )
        .unwrap();
        let urls: Vec<&str> = l.settings.routes.iter().map(|r| r.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "relp://127.0.0.1:2514?priority=err&window=64",
                "udp://127.0.0.1:514?format=rfc3164&source=onboot.*"
            ]
        );
        let e = load("[[route]]\npriority = \"err\"\n", &[]).unwrap_err();
        assert!(e.contains("url"), "{e}");
        let e = load("[[route]]\nurl = \"relp://h:1\"\nbogus = \"x\"\n", &[]).unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn file_values_apply_and_the_command_line_wins() {
        let l = load(
            "max-lines = 10\nmax-bytes = \"64k\"\nsocket-query = \"/q\"\nudp = [\"127.0.0.1:5514\", \"[::1]:5514\"]\nlevel-prefix = true\n",
            &["--max-lines", "20"],
        )
        .unwrap();
        let s = &l.settings;
        assert_eq!(s.limits.max_lines, 20);
        assert_eq!(s.limits.max_bytes, 64 << 10);
        assert_eq!(s.query_socket, PathBuf::from("/q"));
        assert_eq!(s.net.udp.len(), 2);
        assert!(s.level_prefix);
        assert_eq!(l.origin("max-lines"), Origin::CommandLine);
        assert_eq!(l.origin("max-bytes"), Origin::File(2));
        assert_eq!(l.origin("tcp-max-conns"), Origin::Default);
    }

    #[test]
    fn a_repeatable_flag_on_the_command_line_replaces_the_files_list() {
        let l = load(
            "tcp = [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n",
            &["--tcp", "[::1]:3"],
        )
        .unwrap();
        assert_eq!(l.settings.net.tcp, vec!["[::1]:3".parse().unwrap()]);
    }

    #[test]
    fn the_command_line_beats_a_conflicting_key() {
        let l = load("kmsg = \"/tmp/saved\"\n", &["--no-kmsg"]).unwrap();
        assert_eq!(l.settings.kmsg, None);
        let l = load("no-kmsg = true\n", &["--kmsg", "/k"]).unwrap();
        assert_eq!(l.settings.kmsg, Some(PathBuf::from("/k")));
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let cases = [
            (
                "max-lines = 5\nmax_lines = 3\n",
                "FILE:2:1: unknown key `max_lines` (did you mean `max-lines`?",
            ),
            ("\n\nbogus = 1\n", "FILE:3:1: unknown key `bogus`"),
            (
                "max-lines = 0\n",
                "FILE:1:13: max-lines = 0: must be a whole number of at least 1",
            ),
            (
                "max-bytes = \"lots\"\n",
                "FILE:1:13: max-bytes = \"lots\": \"lots\" is not a size",
            ),
            (
                "level-prefix = \"yes\"\n",
                "FILE:1:16: level-prefix = \"yes\": expects true or false",
            ),
            (
                "udp = [\"127.0.0.1:1\",\n  \"localhost:1\"]\n",
                "FILE:2:3: udp = \"localhost:1\": \"localhost:1\" is not ADDR:PORT",
            ),
            (
                "max-lines = 1.5\n",
                "FILE:1:13: max-lines = 1.5: expects a string or a whole number",
            ),
            (
                "[ring]\nmax-lines = 1\n",
                "FILE:1:2: unknown key `ring` (the file has no sections",
            ),
            ("max-lines = \n", "FILE:1:13: "),
            (
                "kmsg = \"/k\"\nno-kmsg = true\n",
                "FILE:2:1: no-kmsg cannot be set together with kmsg (line 1)",
            ),
            ("config = \"/x\"\n", "FILE:1:1: unknown key `config`"),
        ];
        for (file, want) in cases {
            let err = load(file, &[])
                .err()
                .unwrap_or_else(|| panic!("{file:?} was accepted"));
            assert!(err.starts_with(want), "{file:?}: {err}");
        }
    }

    #[test]
    fn every_mistake_of_the_file_is_reported_in_file_order() {
        let err = load(
            "max-lines = 0\nudp = [\"x\", \"127.0.0.1:1\", \"y\"]\nbogus = 1\nmax-bytes = \n[ring]\nevict = \"fifo\"\n",
            &[],
        )
        .unwrap_err();
        let lines: Vec<&str> = err.lines().map(|l| l.split(": ").next().unwrap()).collect();
        assert_eq!(
            lines,
            [
                "FILE:1:13",
                "FILE:2:8",
                "FILE:2:28",
                "FILE:3:1",
                "FILE:4:13",
                "FILE:5:2"
            ],
            "{err}"
        );
    }

    #[test]
    fn keys_that_need_each_other_may_both_be_in_the_file() {
        let l = load("multiline = \"^\\\\s\"\nmultiline-match = \"first\"\n", &[]).unwrap();
        assert_eq!(l.settings.multiline.unwrap().mode, multiline::Mode::First);
        let l = load("multiline-match = \"last\"\n", &["--multiline", "x"]).unwrap();
        assert_eq!(l.settings.multiline.unwrap().mode, multiline::Mode::Last);
        let e = load("max-lines = 3\nmultiline-match = \"first\"\n", &[]).unwrap_err();
        assert!(
            e.starts_with(
                "FILE:2:1: the following required arguments were not provided: --multiline"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let loader = Loader::try_from_args(
            ["ringlogd", "--config", "/nonexistent/ringlogd.toml"].map(OsString::from),
        )
        .unwrap();
        let err = loader.load().unwrap_err();
        assert!(
            err.contains("/nonexistent/ringlogd.toml") && err.contains("No such file"),
            "{err}"
        );
    }

    #[test]
    fn every_flag_but_config_is_a_key() {
        let keys = keys();
        for want in [
            "max-lines",
            "syslog-socket",
            "fd-query",
            "user",
            "pidfile",
            "no-kmsg",
        ] {
            assert!(keys.iter().any(|k| k == want), "{want}");
        }
        assert!(!keys.iter().any(|k| k == "config" || k == "check-config"));
    }
}
