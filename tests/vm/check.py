#!/usr/bin/env python3
"""Judge what a test VM wrote to its results port (tests/vm.sh).

A results file holds `CHECK ok|FAIL NAME :: DETAIL` lines (checks made in
the guest), `VAL KEY VALUE` lines (figures), and `BEGIN NAME` ... `END NAME`
sections of raw output: `ring` (logread --json), `kmsg` (kmsg_dump, a raw
read of /dev/kmsg), `stats` (logread --stats). This script repeats the
guest's checks and adds those that need the raw output, one line each:

    PASS|FAIL <TAB> NAME <TAB> DETAIL

Usage: check.py tier1 BOOT1_RESULTS BOOT2_RESULTS
       check.py tier2 RESULTS
"""

import json
import re
import sys

FACILITIES = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
    "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0",
    "local1", "local2", "local3", "local4", "local5", "local6", "local7",
]
SEVERITIES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]


class Results:
    """One results file, parsed."""

    def __init__(self, path):
        self.path = path
        self.checks = []  # (ok, name, detail)
        self.vals = {}
        self.sections = {}
        self.done = False
        section = None
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.rstrip("\r\n")
                if section is not None:
                    if line == f"END {section}":
                        section = None
                    else:
                        self.sections[section].append(line)
                elif line.startswith("BEGIN "):
                    section = line[6:]
                    self.sections[section] = []
                elif line.startswith("CHECK "):
                    m = re.match(r"CHECK (ok|FAIL) (.*?)(?: :: (.*))?$", line)
                    if m:
                        self.checks.append((m[1] == "ok", m[2], m[3] or ""))
                elif line.startswith("VAL "):
                    _, key, *rest = line.split(" ", 2)
                    self.vals[key] = rest[0] if rest else ""
                elif line == "DONE":
                    self.done = True

    def ring(self):
        return [json.loads(l) for l in self.sections.get("ring", []) if l.strip()]

    def stats(self):
        text = "\n".join(self.sections.get("stats", [])).strip()
        return json.loads(text) if text else None

    def kmsg(self):
        """The raw /dev/kmsg records: (seq, usec, facility, severity, text)."""
        records = []
        for l in self.sections.get("kmsg", []):
            if l == "LOST":
                records.append(None)
                continue
            head, _, text = l.partition(";")
            prio, seq, usec = head.split(",")[:3]
            prio = int(prio)
            records.append((int(seq), int(usec), FACILITIES[prio >> 3], SEVERITIES[prio & 7], unescape(text)))
        return records


failures = 0


def report(ok, name, detail=""):
    global failures
    failures += 0 if ok else 1
    detail = " ".join(str(detail).split())
    print(f"{'PASS' if ok else 'FAIL'}\t{name}\t{detail[:300]}")


def guest_checks(res, prefix=""):
    report(res.done, f"{prefix}the guest ran to its end", res.path if not res.done else "")
    for ok, name, detail in res.checks:
        report(ok, prefix + name, detail)


def kernel_text(e):
    """The text of a kernel log entry as the kernel had it: a record that
    user space wrote (any facility but kern) has its tag and pid split off
    into app and pid, as /dev/log's are."""
    if e.get("facility") == "kern" or not e.get("app"):
        return e["msg"]
    pid = f"[{e['pid']}]" if e.get("pid") else ""
    return f"{e['app']}{pid}: {e['msg']}"


def unescape(text):
    """/dev/kmsg's text with its \\xHH escapes undone, as ringlogd stores it."""
    raw = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m[1], 16)]), text.encode())
    return raw.decode("utf-8", errors="replace")


def kernel_records(ring):
    """The ring's kernel entries as (seq, usec, facility, severity, text)."""
    return [
        (e["kmsg_seq"], e["kmsg_usec"], e.get("facility"), e.get("severity"), kernel_text(e))
        for e in ring
        if e.get("input") == "kmsg" and "kmsg_seq" in e and not e.get("kmsg_fragment")
    ]


def check_kernel(res, ring, prefix=""):
    """Every kernel record from the first, in order, no gap, each equal to
    the raw read's record up to the barrier the guest logged last."""
    kernel = kernel_records(ring)
    raw = res.kmsg()
    seqs = [k[0] for k in kernel]
    report(bool(seqs) and seqs == list(range(seqs[0], seqs[0] + len(seqs))) and seqs[0] == 0,
           f"{prefix}the ring's kernel records run from sequence 0 with no gap",
           f"{len(seqs)} records, {seqs[0] if seqs else '-'}..{seqs[-1] if seqs else '-'}")
    first = kernel[0][4] if kernel else ""
    report(first.startswith("Linux version"), f"{prefix}the first kernel record is \"Linux version ...\"",
           first[:80])
    report(None not in raw and bool(raw), f"{prefix}the raw read of /dev/kmsg lost nothing itself",
           f"{len(raw)} records")
    barrier = [i for i, r in enumerate(raw) if r and "kmsg barrier" in r[4]]
    upto = raw[: barrier[-1] + 1] if barrier else raw
    by_seq = {k[0]: k for k in kernel}
    mismatched = [r for r in upto if r is None or by_seq.get(r[0]) != r]
    detail = f"{len(upto)} raw records up to the barrier"
    if mismatched:
        r = mismatched[0]
        detail += f"; {len(mismatched)} differ, first: raw {r} ring {by_seq.get(r[0]) if r else None}"
    report(bool(upto) and not mismatched,
           f"{prefix}each kernel record matches the raw read: text, facility, severity, microseconds", detail)


def check_stats(res, prefix=""):
    stats = res.stats()
    if stats is None:
        report(False, f"{prefix}stats balance: received = stored + dropped", "no stats")
        return
    bad = {k: v for k, v in stats["inputs"].items() if v["received"] != v["stored"] + v["dropped"]}
    summary = ", ".join(f"{k} {v['received']}={v['stored']}+{v['dropped']}" for k, v in stats["inputs"].items())
    report(not bad, f"{prefix}stats balance for every input: received = stored + dropped", summary)


def find(ring, **want):
    return [e for e in ring if all(e.get(k) == v for k, v in want.items())]


def has(ring, name, detail="", **want):
    found = find(ring, **want)
    report(bool(found), name, json.dumps(found[0]) if found else f"no entry with {want} {detail}")
    return found


def tier1(path1, path2):
    one, two = Results(path1), Results(path2)
    guest_checks(one, "boot 1: ")
    ring = one.ring()
    # ringlogd starts first: before the kernel's first line the ring holds
    # nothing but the daemon's own entries ("memlogd started", and a
    # warning when the fd limit cuts a default).
    first = next((i for i, e in enumerate(ring) if e.get("input") == "kmsg"), None)
    before = ring[:first] if first is not None else ring
    report(first is not None and ring[first]["msg"].startswith("Linux version")
           and all(e.get("input") == "internal" for e in before),
           "boot 1: the kernel's first line comes first, after the daemon's own entries alone",
           " | ".join(e["msg"][:70] for e in before + ring[first:first + 1 if first is not None else 0]))
    check_kernel(one, ring, "boot 1: ")
    has(ring, "boot 1: busybox logger right after -daemonize returned is not lost",
        input="syslog", app="early", msg="logged right after -daemonize returned (boot 1)")
    has(ring, "boot 1: a line written into /dev/kmsg arrives as user.info from the kernel log",
        input="kmsg", facility="user", severity="info", app="kmsgwrite", msg="a line written into /dev/kmsg")
    has(ring, "boot 1: logwrite's command's stdout arrives (source NAME.out)",
        input="fd", source="failer.out", msg="to-stdout")
    has(ring, "boot 1: logwrite's command's stderr arrives (source NAME)",
        input="fd", source="failer", msg="to-stderr")
    has(ring, "boot 1: busybox logger's fields: user.notice, tag as app",
        input="syslog", app="late", facility="user", severity="notice", msg="logged after logread -F started")
    check_stats(one, "boot 1: ")

    guest_checks(two, "boot 2: ")
    ring2 = two.ring()
    b1, b2 = one.vals.get("boot_id", "?"), two.vals.get("boot_id", "?")
    report(b1 != b2, "the two boots have different boot ids", f"{b1} {b2}")
    marks = [i for i, e in enumerate(ring2)
             if e.get("source") == "memlogd" and e["msg"].startswith("memlogd started; loaded ")]
    mark = marks[0] if marks else None
    want = re.compile(rf"memlogd started; loaded (\d+) entries from /persist/ring.snapshot, "
                      rf"of boot {re.escape(b1)}; this is boot {re.escape(b2)}$")
    m = want.match(ring2[mark]["msg"]) if mark is not None else None
    report(bool(m), "boot 2: the entry after the snapshot's names this boot and the boot the entries came from",
           ring2[mark]["msg"] if mark is not None else "no such entry")
    if m:
        report(int(m[1]) == mark, "boot 2: the snapshot's entries are exactly those before that entry",
               f"loaded {m[1]}, entry at index {mark}")
        before = [(e["seq"], e["msg"]) for e in ring2[:mark]]
        # Boot 1 went on logging after its dump (the disk's kernel
        # records, its stop): its dump is where the loaded entries start.
        boot1 = [(e["seq"], e["msg"]) for e in ring]
        report(before[: len(boot1)] == boot1,
               "boot 2: it holds every entry boot 1 had, with its sequence numbers",
               f"{len(before)} loaded, boot 1 had {len(ring)} at its dump")
        after = kernel_records(ring2[mark:])
        report(bool(after) and after[0][0] == 0 and after[0][4].startswith("Linux version"),
               "boot 2: this boot's kernel records follow the marker from sequence 0",
               after[0][4][:40] if after else "none")
        has(ring2[mark:], "boot 2: busybox logger right after -daemonize returned is not lost",
            input="syslog", app="early", msg="logged right after -daemonize returned (boot 2)")
    check_kernel(two, ring2[mark:] if mark is not None else ring2, "boot 2: ")
    check_stats(two, "boot 2: ")


def tier2(path):
    res = Results(path)
    guest_checks(res)
    ring = res.ring()
    check_kernel(res, ring)
    check_stats(res)
    found = has(ring, "journald forwards logger -t demo hi (default /dev/log) with its tag",
                input="syslog", app="demo", msg="hi")
    if found:
        # The message holds no pid; the credentials journald passes on are
        # logger's while it runs, journald's own once it has exited.
        peer = found[0].get("peer", {}).get("pid")
        sender = {str(res.vals.get("demo_pid")): "logger's", str(res.vals.get("journald_pid")): "journald's"}
        report(str(peer) in sender, "logger -t demo hi: the sender's pid is logger's or, once logger exited, journald's",
               f"peer pid {peer}: {sender.get(str(peer), 'neither')} (logger {res.vals.get('demo_pid')}, "
               f"journald {res.vals.get('journald_pid')})")
    has(ring, "logger -i -t demo: journald forwards the tag and logger's pid",
        input="syslog", app="demo", msg="hi with pid", pid=res.vals.get("demo_i_pid"))
    live = [e for e in find(ring, input="syslog", app="demo-live")]
    peer = live[0].get("peer", {}).get("pid") if live else None
    report(bool(live) and str(peer) == res.vals.get("demo_live_pid"),
           "a sender still running when journald forwards: its pid is in the entry's credentials",
           f"peer pid {peer}, sender {res.vals.get('demo_live_pid')}")


if __name__ == "__main__":
    try:
        if sys.argv[1:2] == ["tier1"] and len(sys.argv) == 4:
            tier1(sys.argv[2], sys.argv[3])
        elif sys.argv[1:2] == ["tier2"] and len(sys.argv) == 3:
            tier2(sys.argv[2])
        else:
            sys.exit(__doc__)
    except Exception as e:  # results this script cannot read are a failure too
        import traceback
        traceback.print_exc()
        report(False, f"judging {' '.join(sys.argv[1:])}", f"{type(e).__name__}: {e}")
    sys.exit(1 if failures else 0)
