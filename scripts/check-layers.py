#!/usr/bin/env python3
"""Checks that the modules of src/ import one another one way only (issue 18).

Each file of src/ (the library; src/bin/ is a separate crate) is a node. An edge A -> B is any
path in A's code that names B: `crate::b::...`, `super::...`, `self::...`, or, in a `mod.rs`
or `lib.rs`, a child module it declares (`pub use child::X`). A path resolves to the longest
module file it names. Comments and `#[cfg(test)] mod tests { ... }` blocks at the end of a
file are ignored, and so are files named tests.rs (test-only modules).

Inline modules (`mod sealed { ... }`) are not tracked: inside one, name items by their crate
path (`crate::ffi::args::X`), not `super::X`, which this script reads as the file's parent.

A `mod.rs` is a facade: it declares and re-exports its children, so its children must not name
it (`super::Item` where Item is defined in mod.rs is an edge back up, and a cycle). Likewise
nothing inside src/ may name a re-export of lib.rs (`crate::Error`): name the defining module.

Then it reads the layers drawn in the README's "Architecture" section (`[N] name` lines, each
followed by the files of that layer) and checks that every file of src/ is in exactly one
layer and that no file imports one of a higher layer.

Prints every cycle (strongly connected component with more than one file) and every upward
import, and exits 1 if there is one; with --graph prints the edges, and with --layers prints
each file's depth (longest path down to a leaf).
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(rel):
    """'lease/kept.rs' -> ('lease', 'kept'); 'lease/mod.rs' -> ('lease',); 'lib.rs' -> ()."""
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def load():
    files = {}
    for d, dirs, names in os.walk(ROOT):
        rel_d = os.path.relpath(d, ROOT)
        if rel_d.split(os.sep)[0] == "bin":
            continue
        for n in names:
            if not n.endswith(".rs") or n == "tests.rs":
                continue
            rel = os.path.normpath(os.path.join(rel_d, n)).replace(os.sep, "/")
            with open(os.path.join(d, n), encoding="utf-8") as f:
                files[module_of(rel)] = (rel, f.read())
    return files


def strip(src):
    # Drop a trailing `#[cfg(test)] mod tests { ... }` (by convention the file's last item).
    m = re.search(r"^#\[cfg\(test\)\]\s*\n\s*(?:pub(?:\(crate\))?\s+)?mod tests\s*\{", src, re.M)
    if m:
        src = src[: m.start()]
    out = []
    for line in src.splitlines():
        i = line.find("//")
        if i >= 0:
            line = line[:i]
        out.append(line)
    return "\n".join(out)


IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def paths(code):
    """Every path starting with crate/super/self, with `{a, b::c}` groups expanded."""
    found = []
    for m in re.finditer(r"\b(crate|super|self)((?:::%s)*)(::\{|::\*)?" % IDENT, code):
        head = [m.group(1)] + [p for p in m.group(2).split("::") if p]
        if len(head) == 1 and not m.group(3):
            continue  # `pub(crate)`, `&self`: not a path
        if m.group(3) == "::*":
            found.append(head)
        elif m.group(3):
            # A group: take each member's first segments.
            depth, j, start = 1, m.end(), m.end()
            while j < len(code) and depth:
                depth += {"{": 1, "}": -1}.get(code[j], 0)
                j += 1
            for member in re.split(r",", code[start : j - 1]):
                segs = re.findall(IDENT, member.split("{")[0])
                if segs and segs[0] != "self":
                    found.append(head + segs)
                else:
                    found.append(head)
        else:
            found.append(head)
    return found


def children_declared(code):
    return set(re.findall(r"^\s*(?:pub(?:\([a-z]+\))?\s+)?mod\s+(%s)\s*;" % IDENT, code, re.M))


def resolve(mod, rel, path, files):
    """The module file a path names, or None (an external crate or an item of `mod` itself)."""
    is_dir_mod = rel.endswith("mod.rs") or rel == "lib.rs"
    here = list(mod) if is_dir_mod else list(mod[:-1])  # the directory `self` lives in
    head, rest = path[0], path[1:]
    if head == "crate":
        base = []
    elif head == "super":
        base = here[:-1] if is_dir_mod else list(mod[:-1])
        # `super` of a file module is its directory's mod.rs; `super::super` walks up.
        while rest and rest[0] == "super":
            base, rest = base[:-1], rest[1:]
    else:  # self
        base = list(mod)
    best = None
    for n in range(len(rest), -1, -1):
        cand = tuple(base + rest[:n])
        if cand in files:
            best = cand
            break
    return best


def graph(files):
    edges = {m: set() for m in files}
    for mod, (rel, src) in files.items():
        code = strip(src)
        for p in paths(code):
            target = resolve(mod, rel, p, files)
            if target is not None and target != mod:
                edges[mod].add(target)
        if rel.endswith("mod.rs") or rel == "lib.rs":
            for child in children_declared(code):
                for m in re.finditer(r"\b(?<!::)%s::" % re.escape(child), code):
                    edges[mod].add(mod + (child,))
                    break
    return edges


def sccs(edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in edges:
                continue
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
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def readme_layers():
    """{'src/x.rs': (N, 'name')} from the README's Architecture block."""
    path = os.path.join(ROOT, "..", "README.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start = text.find("## Architecture")
    if start < 0:
        return None
    block = text[start:].split("```")[1]
    layers, current, problems = {}, None, []
    for line in block.splitlines():
        m = re.match(r"\[(\d+)\]\s+(\w+)", line.strip())
        if m:
            current = (int(m.group(1)), m.group(2))
            continue
        for f in re.findall(r"src/\S+\.rs", line):
            if f in layers:
                problems.append(f"README: {f} is in two layers")
            layers[f] = current
    return layers, problems


def name(files, m):
    return "src/" + files[m][0]


def main():
    files = load()
    edges = graph(files)
    if "--graph" in sys.argv:
        for m in sorted(edges):
            for t in sorted(edges[m]):
                print(f"{name(files, m)} -> {name(files, t)}")
    if "--layers" in sys.argv:
        depth = {}

        def d(m, seen=()):
            if m in depth:
                return depth[m]
            if m in seen:
                return 0
            depth[m] = 1 + max((d(t, seen + (m,)) for t in edges[m]), default=-1)
            return depth[m]

        for m in sorted(files, key=lambda m: (d(m), m)):
            print(f"{d(m):2} {name(files, m)}")
    problems = []
    drawn = readme_layers()
    if drawn is None:
        problems.append("README.md has no Architecture section")
    else:
        layer_of, problems = drawn
        names = {name(files, m) for m in files}
        for f in sorted(names - set(layer_of)):
            problems.append(f"README: {f} is in no layer of the Architecture section")
        for f in sorted(set(layer_of) - names):
            problems.append(f"README: {f} is drawn but is not a module of src/")
        for m in sorted(edges):
            for t in sorted(edges[m]):
                a, b = layer_of.get(name(files, m)), layer_of.get(name(files, t))
                if a and b and b[0] > a[0]:
                    problems.append(
                        f"upward import: {name(files, m)} ({a[1]}) imports {name(files, t)} ({b[1]})"
                    )
    for p in problems:
        print(p, flush=True)
    cycles = [c for c in sccs(edges) if len(c) > 1]
    for c in cycles:
        members = sorted(name(files, m) for m in c)
        print("import cycle: " + " <-> ".join(members))
        for m in sorted(c):
            inside = sorted(name(files, t) for t in edges[m] if t in c)
            print(f"    {name(files, m)} imports {', '.join(inside)}")
    if cycles or problems:
        print(
            f"{len(cycles)} import cycle(s), {len(problems)} layering problem(s) in src/",
            file=sys.stderr,
        )
        return 1
    print(f"no import cycle and no upward import among the {len(files)} modules of src/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
