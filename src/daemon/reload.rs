//! SIGHUP: read the configuration file again and apply what can change
//! while the ring is kept. [`LIVE_SETTINGS`] lists those settings with how
//! each is applied; every other change is reported as waiting for a
//! restart. A file that no longer loads changes nothing.

use std::time::Instant;

use super::{warn, Daemon};
use crate::config::{show, Settings};
use crate::ingest;
use crate::record::Severity;

impl Daemon {
    /// SIGHUP: read the configuration file again and apply what can change
    /// while the ring is kept (its limits, the intake's `<N>` prefixes, the
    /// TCP connection limits); say what else changed and waits for a
    /// restart. A file that no longer loads changes nothing.
    pub(super) fn reload(&mut self) {
        let Some(loader) = self.loader.as_ref().filter(|l| l.config_path().is_some()) else {
            ingest::note(
                &mut self.ring,
                Severity::Warning,
                "received SIGHUP: there is no configuration file (--config) to re-read",
            );
            return;
        };
        let path = loader
            .config_path()
            .unwrap_or(std::path::Path::new(""))
            .display()
            .to_string();
        if let Some(n) = &self.notifier {
            let _ = n.reloading();
        }
        match loader.load() {
            Err(e) => warn(
                &mut self.ring,
                // Every mistake of the file, in one entry.
                format!(
                    "SIGHUP: {}; nothing changed, the running settings stay",
                    e.replace('\n', "; ")
                ),
            ),
            Ok(loaded) => self.apply(&path, loaded.settings),
        }
        if let Some(n) = &self.notifier {
            let _ = n.ready("serving");
        }
    }

    /// Apply the live part of `new` and report every change.
    fn apply(&mut self, path: &str, new: Settings) {
        let changes = show::changes(&self.settings, &new);
        let text = |c: &[&show::Change]| {
            c.iter()
                .map(|c| format!("{} {} -> {}", c.key, c.old, c.new))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (live, later): (Vec<_>, Vec<_>) =
            changes.iter().partition(|c| live_setting(c.key).is_some());
        for change in &live {
            if let Some(apply) = live_setting(change.key) {
                apply(self, &new);
            }
        }
        let msg = if live.is_empty() {
            format!("re-read {path}: nothing to apply")
        } else {
            format!("re-read {path}: applied {}", text(&live))
        };
        ingest::note(&mut self.ring, Severity::Info, msg);
        if !later.is_empty() {
            warn(
                &mut self.ring,
                format!(
                    "re-read {path}: not applied until ringlogd restarts: {}",
                    text(&later)
                ),
            );
        }
    }
}

/// How a setting is applied to the running daemon.
type Apply = fn(&mut Daemon, &Settings);

/// The settings SIGHUP applies while the ring is kept, each with how; a
/// change to any other waits for a restart. The one list of them: the
/// reload report and the tests read it too.
pub const LIVE_SETTINGS: &[(&str, Apply)] = &[
    ("max-lines", apply_limits),
    ("max-bytes", apply_limits),
    ("level-prefix", apply_level_prefix),
    ("tcp-max-conns", apply_tcp_limits),
    ("tcp-idle-timeout", apply_tcp_limits),
    ("capture", apply_captures),
    ("capture-before", apply_captures),
    ("capture-after", apply_captures),
    ("capture-max-span", apply_captures),
    ("capture-max-bytes", apply_captures),
    ("capture-max", apply_captures),
];

fn live_setting(key: &str) -> Option<Apply> {
    LIVE_SETTINGS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|&(_, apply)| apply)
}

fn apply_limits(d: &mut Daemon, new: &Settings) {
    d.settings.limits = new.limits;
    d.ring.set_limits(new.limits);
}

/// New triggers and bounds for captures; the captures held stay.
fn apply_captures(d: &mut Daemon, new: &Settings) {
    d.settings.capture = new.capture.clone();
    d.ring.set_capture_rules(new.capture.rules());
    d.query
        .capture_filters
        .replace(new.capture.filter_texts(), &d.ring);
}

fn apply_level_prefix(d: &mut Daemon, new: &Settings) {
    d.settings.level_prefix = new.level_prefix;
    d.intake.set_level_prefix(new.level_prefix);
}

fn apply_tcp_limits(d: &mut Daemon, new: &Settings) {
    let net = &mut d.settings.net;
    net.tcp_max_conns = new.net.tcp_max_conns;
    net.tcp_idle_timeout = new.net.tcp_idle_timeout;
    d.net
        .set_limits(net.tcp_max_conns, net.tcp_idle_timeout, Instant::now());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::show::values;

    #[test]
    fn every_live_setting_is_a_setting() {
        let keys: Vec<_> = values(&Settings::default())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        for (key, _) in LIVE_SETTINGS {
            assert!(
                keys.contains(key),
                "{key} is no setting --check-config shows"
            );
        }
    }
}
