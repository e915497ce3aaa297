//! How the daemon starts, runs and hands over: its command line and
//! configuration file, sockets inherited or activated, boot with an init,
//! dropping privileges, init scripts, and restarts that keep the ring.

mod activation;
mod boot;
mod capture_dir;
mod captures;
mod config;
mod daemon;
mod dictionary;
mod inherit;
mod initscripts;
mod privileges;
mod restart;
mod systemd_unit;
