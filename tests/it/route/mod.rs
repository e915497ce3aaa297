//! The ring and other log servers: routes out to a central rsyslogd and
//! uploads to systemd-journal-remote, and rsyslog and syslog-ng forwarding
//! in.

mod capture_route;
mod forward;
mod journal;
mod outbound;
