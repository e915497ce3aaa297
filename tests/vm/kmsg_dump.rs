//! The reference the VM tests compare ringlogd's ring with: a raw read of
//! /dev/kmsg, one record per read(2), printed as its first line
//! (`PRIO,SEQ,USEC,FLAGS;TEXT`) until no record is left. util-linux's
//! `dmesg -r` misprints user-space priorities and busybox has no raw
//! non-blocking reader, hence this. Built with rustc alone (std only), as a
//! static binary for the initramfs and the Debian guest.

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;

/// O_NONBLOCK on Linux (x86_64 and aarch64 alike).
const O_NONBLOCK: i32 = 0o4000;

fn main() {
    let mut kmsg = match OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open("/dev/kmsg")
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kmsg_dump: cannot open /dev/kmsg: {e}");
            std::process::exit(1);
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match kmsg.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let record = &buf[..n];
                let first = record.split(|&b| b == b'\n').next().unwrap_or(record);
                out.write_all(first).and_then(|()| out.write_all(b"\n")).unwrap();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            // EPIPE: records were overwritten before they were read. Said,
            // so the comparison sees the gap, and reading goes on.
            Err(e) if e.raw_os_error() == Some(32) => writeln!(out, "LOST").unwrap(),
            Err(e) => {
                eprintln!("kmsg_dump: reading /dev/kmsg: {e}");
                std::process::exit(1);
            }
        }
    }
}
