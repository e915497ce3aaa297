#!/usr/bin/env python3
"""Checks the shape of src/: the rules ARCHITECTURE.md states, as a test.

A room is a top-level module: src/X.rs or src/X/. Room A depends on room B
when code in A names `crate::B` (in a path or a `use crate::{B, ..}`
group; comments do not count). The checks:
  1. no cycle between rooms, so every dependency runs one way;
  2. no room but the daemon itself names `crate::daemon` (src/bin and
     src/lib.rs are above every room and may);
  3. no file in src/ is longer than MAX_LINES lines.
It prints the rooms from the bottom up (each after everything it uses),
then one line per broken rule, then `layers: N passed, M failed`, and exits
1 when a rule is broken.

usage: python3 tests/layers.py [SRC_DIR]
"""
import os
import re
import sys

MAX_LINES = 900
SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
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


def main():
    edges, files = scan(SRC)
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
    print("rooms, bottom up:")
    for room in bottom_up(edges):
        uses = ", ".join(sorted(edges.get(room, {}))) or "-"
        print(f"  {room:<14} uses {uses}")
    for f in failures:
        print("FAILED", f)
    rules = [
        any(f.startswith("cycle") for f in failures),
        any("crate::daemon" in f for f in failures),
        any("lines, more than" in f for f in failures),
    ]
    print(f"layers: {rules.count(False)} passed, {rules.count(True)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
