//! The ring and other syslog daemons: routes out to a central rsyslogd,
//! and rsyslog and syslog-ng forwarding in.

mod forward;
mod outbound;
