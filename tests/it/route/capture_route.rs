//! A `capture=1` route carries only the entries of captures: a central
//! rsyslogd gets each capture's context, before and after its trigger, and
//! nothing of the stream between captures; the route's other filters
//! still apply.

use crate::route::outbound::route_stats;
use crate::support::captures::*;
use crate::support::receiver::{Input, Receiver};
use crate::support::*;

#[test]
fn a_capture_route_sends_exactly_the_captured_entries() {
    let rx = Receiver::start(Input::Tcp, None);
    let after_only = Receiver::start(Input::Tcp, None);
    let mut args = capture_args("grep=^BOOM");
    args.extend(["--route".to_owned(), rx.url("tcp", "capture=1")]);
    args.extend([
        "--route".to_owned(),
        after_only.url("tcp", "capture=1&grep=-after-"),
    ]);
    let d = Daemon::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    make_capture(&d, "rt1", "BOOM one", 1);
    send_lines(&d, "rt-outside", 5);
    // The second capture's window starts 3 s after the lines outside. The
    // route sends in order: once its last entry is in, so is anything the
    // route would have sent before.
    make_capture(&d, "rt2", "BOOM two", 2);
    let dump = d.dump();
    let (one, two) = (window(&dump, "BOOM one"), window(&dump, "BOOM two"));
    let want: Vec<String> = msgs(&one).into_iter().chain(msgs(&two)).collect();
    assert_context(&msgs(&one), "rt1", "BOOM one");
    assert_context(&msgs(&two), "rt2", "BOOM two");
    let got = rx.wait_for("both captures", 15, |m| m.len() >= want.len());
    assert_eq!(msgs(&got), want);
    let s = route_stats(&d, 0);
    assert_eq!(
        (s["sent"].as_u64(), s["lost"].as_u64()),
        (Some(want.len() as u64), Some(0)),
        "{s}"
    );
}
