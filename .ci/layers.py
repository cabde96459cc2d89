#!/usr/bin/env python3
"""The layering of sockscope's modules, checked on the import graph.

Reads every src/**/*.rs, finds which top-level module (a `mod` of src/lib.rs:
`model`, `sample`, `ui`, ...) names which other one (`crate::X`, `use crate::{X,
..}`, `super::` paths that climb to the crate root), builds the graph of
top-level modules and fails when

- the graph has a cycle between top-level modules, or
- an edge breaks a rule of RULES below, or
- an engine module names the crates in ENGINE_NEVER_NAMES.

Modules that no rule names (new ones, e.g. `config`, `modes`) may import
anything, but they must not close a cycle. Edges in KNOWN_VIOLATIONS are
reported and tolerated (also when they close a cycle); the list should only
ever shrink. Run from anywhere: `python3 .ci/layers.py [SRC_DIR]`.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

UI_SIDE = {"ui", "live", "serve", "watch", "cli", "modes"}

# module -> ("only", {modules it may import}) or ("never", {modules it must not import}).
# A module may appear more than once: every rule applies.
RULES = [
    ("model", "only", set()),
    ("escape", "only", set()),
    # leaves: errors and exit statuses, option parsers, bounded file reading
    ("fail", "only", set()),
    ("parse", "only", set()),
    ("textfile", "only", set()),
    # samples to snapshots and findings: the engine and the diagnosis only
    ("processor", "only", {"model", "diagnose"}),
    # the layered configuration knows no mode and no screen
    ("config", "never", UI_SIDE),
    # cli only parses and hands over to the modes (the composition root)
    ("cli", "only", {"args", "config", "fail", "escape", "modes"}),
    # the screen is handed what it needs; it never assembles a run itself
    ("ui", "never", {"cli", "modes", "serve", "watch"}),
    # escape: names other users choose (hostnames, process names) are kept escaped
    ("sample", "only", {"model", "escape"}),
    ("diagnose", "only", {"model"}),
    ("filter", "only", {"model", "escape"}),
    ("export", "never", UI_SIDE),
    ("record", "never", UI_SIDE),
    ("serve", "never", {"ui"}),
    ("watch", "never", {"ui"}),
    ("live", "never", {"ui"}),
    ("record", "never", {"ui"}),
]

# The engine: it never names the terminal stack.
ENGINE = {"model", "escape", "sample", "diagnose", "filter", "export", "record"}
ENGINE_NEVER_NAMES = {"ratatui", "crossterm"}

# Edges (from, to) that break a rule or close a cycle and are tolerated until
# they are gone. Empty since the composition root: keep it so.
KNOWN_VIOLATIONS = set()

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """The code without comments, string and char literals (kept as spaces so
    that nothing else moves)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not re.match(r"\w", text[i - 1])):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a).
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def group_heads(code, start):
    """The first identifier of each item of the `{...}` group opening at
    code[start]."""
    depth, j, item, heads = 0, start, "", []
    while j < len(code):
        c = code[j]
        if c == "{":
            depth += 1
            if depth == 1:
                j += 1
                continue
        elif c == "}":
            depth -= 1
            if depth == 0:
                heads.append(item)
                break
        if depth == 1 and c == ",":
            heads.append(item)
            item = ""
        elif depth >= 1:
            item += c
        j += 1
    names = []
    for h in heads:
        m = re.match(r"\s*(" + IDENT + ")", h)
        if m:
            names.append(m.group(1))
    return names


def inline_depths(code):
    """For each offset, how many inline `mod name { ... }` blocks enclose it
    (as a list of (start, end, depth) spans)."""
    spans = []
    for m in re.finditer(r"\bmod\s+" + IDENT + r"\s*\{", code):
        depth, j = 0, m.end() - 1
        while j < len(code):
            if code[j] == "{":
                depth += 1
            elif code[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        spans.append((m.end(), j))
    return spans


def module_path(src, path):
    """`src/a/b.rs` -> ["a", "b"]; `src/a/mod.rs` -> ["a"]; lib.rs -> []."""
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def top_level_modules(src):
    lib = strip((src / "lib.rs").read_text())
    return set(re.findall(r"\bmod\s+(" + IDENT + r")\s*;", lib))


def edges_of(src, tops):
    """{(from, to): [file:line, ...]} and {module: [(crate, file:line)]}."""
    edges = defaultdict(list)
    names = defaultdict(list)
    for path in sorted(src.rglob("*.rs")):
        parts = module_path(src, path)
        if not parts or parts[0] not in tops:
            continue  # lib.rs / main.rs: the crate root and the binary
        me = parts[0]
        code = strip(path.read_text())
        spans = inline_depths(code)

        def line(at):
            return f"{path.relative_to(src.parent)}:{code.count(chr(10), 0, at) + 1}"

        def add(target, at):
            if target in tops and target != me:
                edges[(me, target)].append(line(at))

        for m in re.finditer(r"(?<![\w:$])crate\s*::\s*(\{|" + IDENT + ")", code):
            if m.group(1) == "{":
                for name in group_heads(code, m.start(1)):
                    add(name, m.start())
            else:
                add(m.group(1), m.start())
        for m in re.finditer(r"(?<![\w:])((?:super\s*::\s*)+)(\{|" + IDENT + ")", code):
            ups = m.group(1).count("super")
            depth = len(parts) + sum(1 for (a, b) in spans if a <= m.start() <= b)
            if ups < depth:
                continue  # stays inside this top-level module
            if ups > depth:
                continue  # not valid Rust; the compiler says so
            if m.group(2) == "{":
                for name in group_heads(code, m.start(2)):
                    add(name, m.start())
            else:
                add(m.group(2), m.start())
        if me in ENGINE:
            for m in re.finditer(r"\b(" + "|".join(sorted(ENGINE_NEVER_NAMES)) + r")\b", code):
                names[me].append((m.group(1), line(m.start())))
    return edges, names


def cycles(nodes, graph):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def self_test():
    """The check on a made-up tree: each kind of fault is caught, the
    look-alikes (comments, strings, `super::` inside a module) are not."""
    import contextlib
    import io
    import tempfile

    files = {
        "lib.rs": "pub mod model;\npub mod sample;\npub mod ui;\npub mod newmod;\npub mod other;\n",
        # In a comment and a string: not an import.
        "model/mod.rs": '// crate::ui\nconst S: &str = "crate::ui";\nmod tests { use super::*; }\n',
        # super:: across the crate root, in a group; and the UI stack named.
        "sample/mod.rs": "use super::{model, ui};\nuse ratatui::Frame;\n",
        # super:: inside the module stays inside.
        "sample/inner.rs": "use super::{ui, model};\n",
        "ui.rs": "use crate::{newmod::X, model};\n",
        "newmod.rs": "use crate::ui::Y;\n",
        "other.rs": "use crate::ui::Y;\n",
    }
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "src"
        for name, text in files.items():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_text(text)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = check(src, known=set())
        text = out.getvalue()
    want = [
        "sample -> ui breaks 'sample may import only ",
        "a cycle between newmod, ui",
        "the engine module sample names ratatui",
    ]
    unwanted = ["model -> ui", "sample -> model breaks", "other -> ui breaks"]
    bad = [w for w in want if w not in text] + [u for u in unwanted if u in text]
    if code != 1 or bad:
        print(text)
        print(f"self-test failed: exit {code}, wrong about {bad}")
        return 1
    print("self-test: ok")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "src"
    return check(src, KNOWN_VIOLATIONS)


def check(src, known):
    tops = top_level_modules(src)
    edges, names = edges_of(src, tops)

    print("import graph of the top-level modules:")
    for (a, b) in sorted(edges):
        mark = "  (known violation)" if (a, b) in known else ""
        print(f"  {a} -> {b}{mark}")

    failures = []
    for (a, b), where in sorted(edges.items()):
        if (a, b) in known:
            continue
        for module, kind, mods in RULES:
            if module != a:
                continue
            if (kind == "only" and b not in mods) or (kind == "never" and b in mods):
                listed = ", ".join(sorted(mods))
                if kind == "only":
                    rule = f"{a} may import only {listed}" if mods else f"{a} imports no other crate module"
                else:
                    rule = f"{a} must not import {listed}"
                failures.append(f"{a} -> {b} breaks '{rule}': {', '.join(where[:3])}")

    graph = defaultdict(set)
    for (a, b) in edges:
        if (a, b) not in known:
            graph[a].add(b)
    for comp in cycles(tops, graph):
        inside = [f"{a} -> {b}" for (a, b) in sorted(edges) if a in comp and b in comp and (a, b) not in known]
        failures.append(f"a cycle between {', '.join(comp)}: {'; '.join(inside)}")

    for module, hits in sorted(names.items()):
        for crate, where in hits:
            failures.append(f"the engine module {module} names {crate}: {where}")

    stale = sorted(e for e in known if e not in edges)
    for (a, b) in stale:
        print(f"note: the known violation {a} -> {b} is gone: remove it from known")

    if failures:
        print("\nlayering broken:")
        for f in failures:
            print(f"  {f}")
        return 1
    print("ok: no cycle, every rule holds" + (f" (known violations: {len(known) - len(stale)})" if known else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
