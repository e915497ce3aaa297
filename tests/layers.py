#!/usr/bin/env python3
"""Checks the shape of src/: the rules ARCHITECTURE.md states, as a test.

A room is a top-level module: src/X.rs or src/X/. Room A depends on room B
when code in A names `crate::B` (in a path or a `use crate::{B, ..}`
group; comments do not count). The checks:
  1. no cycle between rooms, so every dependency runs one way;
  2. no room but the daemon itself names `crate::daemon` (src/bin and
     src/lib.rs are above every room and may);
  3. no file in src/ is longer than MAX_LINES lines.
  4. ARCHITECTURE.md's list of rooms (between `<!-- layers:begin -->` and
     `<!-- layers:end -->`) is the one this script prints from the code.
It prints the rooms from the bottom up (each after everything it uses),
then one line per broken rule, then `layers: N passed, M failed`, and exits
1 when a rule is broken. With --write it rewrites ARCHITECTURE.md's list.

usage: python3 tests/layers.py [--write]
"""
import os
import re
import sys

MAX_LINES = 900
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "src")
DOC = os.path.join(ROOT, "ARCHITECTURE.md")
BEGIN, END = "<!-- layers:begin -->", "<!-- layers:end -->"
ABOVE_ROOMS = {"bin", "lib.rs", "main.rs"}

PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
GROUP = re.compile(r"\bcrate::\{([^}]*)\}")
GROUP_NAME = re.compile(r"(?:^|,)\s*([a-z_][a-z0-9_]*)")
LINE_COMMENT = re.compile(r"//.*$", re.M)


def code_of(text):
    """The text without its line comments (doc links name rooms too)."""
    return LINE_COMMENT.sub("", text)


def scan(src):
    """(edges: room -> {room: first file that names it}, files: [(lines, path)])."""
    edges, files = {}, []
    for dirpath, _, names in os.walk(src):
        for name in sorted(names):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            files.append((text.count("\n"), rel))
            top = rel.split(os.sep)[0]
            if top in ABOVE_ROOMS:
                continue
            room = top[:-3] if top.endswith(".rs") else top
            code = code_of(text)
            named = set(PATH.findall(code))
            for group in GROUP.findall(code):
                named |= set(GROUP_NAME.findall(group))
            edges.setdefault(room, {})
            for other in sorted(named - {room}):
                edges[room].setdefault(other, rel)
    return edges, files


def cycles(edges):
    """Strongly connected components of more than one room (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def bottom_up(edges):
    """Rooms ordered so each comes after every room it uses (when acyclic)."""
    order, done = [], set()

    def place(v, path):
        if v in done or v in path:
            return
        for w in sorted(edges.get(v, {})):
            place(w, path | {v})
        done.add(v)
        order.append(v)

    for v in sorted(edges):
        place(v, frozenset())
    return order


def listing(edges):
    """The rooms from the bottom up, each with what it uses, as a text block."""
    lines = ["```text"]
    for room in bottom_up(edges):
        uses = ", ".join(sorted(edges.get(room, {}))) or "-"
        lines.append(f"{room:<13} uses {uses}")
    lines.append("```")
    return "\n".join(lines)


def doc_region(text):
    """The part of ARCHITECTURE.md between the markers, or None."""
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def main():
    edges, files = scan(SRC)
    block = listing(edges)
    if "--write" in sys.argv[1:]:
        with open(DOC, encoding="utf-8") as f:
            text = f.read()
        if doc_region(text) is None:
            print(f"tests/layers.py: {DOC} has no {BEGIN} and {END} lines", file=sys.stderr)
            return 2
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        with open(DOC, "w", encoding="utf-8") as f:
            f.write(f"{head}{BEGIN}\n{block}\n{END}{tail}")
        print("tests/layers.py: wrote the rooms into ARCHITECTURE.md", file=sys.stderr)
    failures = []
    for comp in cycles(edges):
        links = [
            f"{a} -> {b} ({edges[a][b]})" for a in comp for b in sorted(edges.get(a, {})) if b in comp
        ]
        failures.append("cycle between rooms " + ", ".join(comp) + ": " + "; ".join(links))
    for room, uses in sorted(edges.items()):
        if room != "daemon" and "daemon" in uses:
            failures.append(f"{uses['daemon']} names crate::daemon: only the daemon and src/bin may")
    for lines, rel in sorted(files, reverse=True):
        if lines > MAX_LINES:
            failures.append(f"{rel} has {lines} lines, more than {MAX_LINES}")
    with open(DOC, encoding="utf-8") as f:
        documented = doc_region(f.read())
    if documented != block:
        failures.append(
            "ARCHITECTURE.md's rooms are not the code's: run python3 tests/layers.py --write"
        )
    print("rooms, bottom up:")
    print(block)
    for f in failures:
        print("FAILED", f)
    rules = [
        any(f.startswith("cycle") for f in failures),
        any("crate::daemon" in f for f in failures),
        any("lines, more than" in f for f in failures),
        any("ARCHITECTURE.md" in f for f in failures),
    ]
    print(f"layers: {rules.count(False)} passed, {rules.count(True)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
