#!/usr/bin/env python3
"""Run every `sh` block of the documentation and check what it prints.

The documentation's commands are meant to be pasted, so they are run as
pasted: each fenced block tagged `sh` in README.md, CONTRIBUTING.md,
PERFORMANCE.md and docs/*.md runs in POSIX sh (`sh -e`, dash on Debian)
from the repository root, with target/release first on PATH (the README
says to put it there once), in file order. The conventions, which
CONTRIBUTING.md describes for writers:

- An `sh` block followed (only blank lines between) by a `text` block is
  checked against it: stdout and stderr merged, trailing blank lines
  ignored. In the sample, `[..]` matches any text within a line and a line
  `...` matches any number of lines.
- `<!-- docblock: skip: REASON -->` on the line before a block skips it; a
  skip without a reason is a failure.
- `<!-- docblock: timeout: SECS -->` on the line before a block gives it
  longer than the default 600 s (the builds).
- A block must exit 0. A later block of the same file may continue it (use
  the daemon it started); a ringlogd from this tree or /usr/sbin that is
  still running when a file's blocks are done is a failure, and is killed;
  one running before them is left alone and named in a `note` line.

`--bless` writes what each checked block really printed into its sample,
keeping the sample's lines that already match (markers included). Arguments
other than options name the files to run (default: all of them).

The last line is `docs: N passed, M failed, K skipped`; the exit status is
1 if any block failed.
"""

import glob
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DEFAULT_TIMEOUT = 600
MARKER = re.compile(r"^<!--\s*docblock:\s*(\w+)\s*(?::\s*(.*?))?\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(```+)\s*([\w+-]*)\s*$")


class Block:
    """One fenced block: its tag, body lines and where they are."""

    def __init__(self, path, tag, indent, start, end, body):
        self.path = path
        self.tag = tag
        self.indent = indent
        self.start = start  # line index of the opening fence
        self.end = end  # line index of the closing fence
        self.body = body
        self.markers = {}
        self.bad_markers = []
        self.sample = None  # the text block after an sh block

    def where(self):
        return f"{os.path.relpath(self.path, ROOT)}:{self.start + 1}"


def parse(path, lines):
    """The fenced blocks of a markdown file, with their markers and samples."""
    blocks = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, tag = m.group(1), m.group(2), m.group(3)
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            j += 1
        body = [l[len(indent):] if l.startswith(indent) else l.lstrip() for l in lines[i + 1:j]]
        b = Block(path, tag, indent, i, j, body)
        k = i - 1
        while k >= 0 and MARKER.match(lines[k].strip()):
            mm = MARKER.match(lines[k].strip())
            if mm.group(1) in ("skip", "timeout") and mm.group(2):
                b.markers[mm.group(1)] = mm.group(2)
            else:
                b.bad_markers.append(lines[k].strip())
            k -= 1
        blocks.append(b)
        i = j + 1
    for prev, nxt in zip(blocks, blocks[1:]):
        between = lines[prev.end + 1:nxt.start]
        if prev.tag == "sh" and nxt.tag == "text" and all(not l.strip() for l in between):
            prev.sample = nxt
    return blocks


def line_matches(pattern, line):
    if "[..]" not in pattern:
        return pattern == line
    parts = [re.escape(p) for p in pattern.split("[..]")]
    return re.fullmatch(".*".join(parts), line) is not None


def align(expected, actual):
    """The cheapest way to read `actual` through `expected`.

    Returns (cost, lines): cost 0 means the sample matches; `lines` is the
    sample rewritten to match, keeping every expected line that matched
    (markers included) and putting the actual line where none did.
    """
    n, m = len(expected), len(actual)
    inf = float("inf")
    # cost[i][j]: reading actual[j:] with expected[i:].
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    step = [[None] * (m + 1) for _ in range(n + 1)]
    cost[n][m] = 0
    for i in range(n, -1, -1):
        for j in range(m, -1, -1):
            if i == n and j == m:
                continue
            best, how = inf, None
            if i < n and expected[i] == "...":
                # `...` takes no line, or one more line.
                if cost[i + 1][j] < best:
                    best, how = cost[i + 1][j], "skip-dots"
                if j < m and cost[i][j + 1] < best:
                    best, how = cost[i][j + 1], "eat"
            else:
                if i < n and j < m and line_matches(expected[i], actual[j]) and cost[i + 1][j + 1] < best:
                    best, how = cost[i + 1][j + 1], "match"
                if j < m and cost[i][j + 1] + 1 < best:
                    best, how = cost[i][j + 1] + 1, "new"
                if i < n and cost[i + 1][j] + 1 < best:
                    best, how = cost[i + 1][j] + 1, "drop"
            cost[i][j], step[i][j] = best, how
    out = []
    i = j = 0
    while (i, j) != (n, m):
        how = step[i][j]
        if how == "skip-dots":
            out.append("...")
            i += 1
        elif how == "eat":
            j += 1
        elif how == "match":
            out.append(expected[i])
            i, j = i + 1, j + 1
        elif how == "new":
            out.append(actual[j])
            j += 1
        else:
            i += 1
    # Consecutive `...` (kept, then re-entered) collapse to one.
    squeezed = [l for k, l in enumerate(out) if not (l == "..." and k and out[k - 1] == "...")]
    return cost[0][0], squeezed


def our_daemons():
    """Pids of running ringlogd programs from this tree or /usr/sbin."""
    mine = {os.path.join(ROOT, p) for p in glob.glob("target/*/ringlogd", root_dir=ROOT)}
    mine |= {os.path.join(ROOT, p) for p in glob.glob("target/*/release/ringlogd", root_dir=ROOT)}
    mine.add("/usr/sbin/ringlogd")
    pids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{d}/exe")
        except OSError:
            continue
        if exe.removesuffix(" (deleted)") in mine:
            pids.add(int(d))
    return pids


def run(block, env):
    """Run a block; returns (ok, output, seconds, why)."""
    timeout = int(block.markers.get("timeout", DEFAULT_TIMEOUT))
    started = time.monotonic()
    proc = subprocess.Popen(
        ["sh", "-e"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    script = "\n".join(block.body) + "\n"
    why = None
    try:
        out, _ = proc.communicate(script.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        why = f"still running after {timeout} s"
    seconds = time.monotonic() - started
    if why is None and proc.returncode != 0:
        why = f"exit status {proc.returncode}"
    return why is None, out.decode("utf-8", "replace"), seconds, why


def leftover_daemons(before):
    """Daemons started since `before` and still running (given a moment to
    finish stopping), killed; returns their pids."""
    deadline = time.monotonic() + 5
    left = our_daemons() - before
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = our_daemons() - before
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return sorted(left)


def main():
    args = sys.argv[1:]
    bless = "--bless" in args
    files = [a for a in args if not a.startswith("--")]
    if not files:
        files = ["README.md", "CONTRIBUTING.md", "PERFORMANCE.md"] + sorted(glob.glob("docs/*.md", root_dir=ROOT))
    env = dict(os.environ)
    env["PATH"] = os.path.join(ROOT, "target/release") + os.pathsep + env.get("PATH", "")
    env.pop("NO_COLOR", None)
    passed = failed = skipped = 0
    for name in files:
        path = os.path.join(ROOT, name)
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        edits = []
        before = our_daemons()
        if before:
            # Left alone (it may be the machine's own), but a block that
            # starts a daemon on the same paths will then find them in use:
            # say so, since a run cut short leaves its daemons behind.
            print(f"note {name}: ringlogd already running before its blocks (pid {', '.join(map(str, sorted(before)))})")
        for b in parse(path, lines):
            if b.bad_markers:
                print(f"FAILED {b.where()}: a marker without its value: {' '.join(b.bad_markers)}")
                failed += 1
                continue
            if b.tag != "sh":
                continue
            if "skip" in b.markers:
                print(f"skipped {b.where()}: {b.markers['skip']}")
                skipped += 1
                continue
            ok, out, seconds, why = run(b, env)
            actual = out.rstrip("\n").split("\n") if out.strip() else []
            if b.sample is not None:
                expected = list(b.sample.body)
                while expected and not expected[-1].strip():
                    expected.pop()
                cost, blessed = align(expected, actual)
                if cost:
                    if bless:
                        edits.append((b.sample, blessed))
                        print(f"blessed {b.where()}: the sample now reads what the block printed")
                    else:
                        ok = False
                        diff = "\n".join(f"    {l}" for l in unified(expected, blessed))
                        why = (why + "; " if why else "") + f"output differs from the sample:\n{diff}"
            if ok:
                passed += 1
                print(f"ok {b.where()} ({seconds:.1f} s)")
            else:
                failed += 1
                print(f"FAILED {b.where()} ({seconds:.1f} s): {why}")
                if b.sample is None or "differs" not in (why or ""):
                    print("\n".join(f"    | {l}" for l in actual[-40:]))
            sys.stdout.flush()
        left = leftover_daemons(before)
        if left:
            failed += 1
            print(f"FAILED {name}: its blocks left ringlogd running (pid {', '.join(map(str, left))}), now killed")
        if edits:
            for sample, new in sorted(edits, key=lambda e: -e[0].start):
                lines[sample.start + 1:sample.end] = [sample.indent + l if l else l for l in new]
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(lines))
    print(f"docs: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


def unified(expected, actual):
    import difflib

    return list(difflib.unified_diff(expected, actual, "sample", "printed", lineterm="", n=2))[2:]


if __name__ == "__main__":
    sys.exit(main())
