#!/usr/bin/env python3
"""Fails when perfwatch's modules depend on each other in a cycle.

Reads every `crate::a::b` path (in `use` lines and in code) and `super::x` in src/, and
builds two graphs: between top-level modules (`ingest`, `aggregate`, `store`, …) and between
the files of one top-level module (`store/writer.rs` → `store/downsample.rs`). Any cycle in
either is printed with one line that makes it, and the exit status is 1 — unless it is
listed in .ci/known-module-cycles (cycles that predate this check, to be broken; issue 14).
A listed cycle that no longer exists fails too, so the list only shrinks.

    .ci/module-cycles.py [--graph]     # --graph prints the top-level edges too
"""
import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
KNOWN = pathlib.Path(__file__).resolve().parent / "known-module-cycles"
PATH = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)")


def module_of(path: pathlib.Path) -> list[str]:
    """`src/store/writer.rs` → ["store", "writer"]; `src/store/mod.rs` → ["store"]."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def strip_tests(text: str) -> str:
    """Drops `#[cfg(test)] mod tests { … }` blocks: tests may reach anywhere."""
    out, depth, skipping = [], 0, False
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not skipping and line.strip() == "#[cfg(test)]" and i + 1 < len(lines) and lines[i + 1].lstrip().startswith("mod "):
            skipping, depth = True, 0
        if skipping:
            depth += line.count("{") - line.count("}")
            if depth <= 0 and "}" in line:
                skipping = False
            i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def targets(path: pathlib.Path, text: str, known: set[tuple[str, ...]]):
    here = module_of(path)
    is_mod_file = path.stem == "mod"
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("//")[0]
        for root, rest in PATH.findall(code):
            names = rest.strip(":").split("::")
            if root == "crate":
                full = names
            else:  # super:: from a file is its parent module (from mod.rs, the module's parent)
                base = here[:-1] if not is_mod_file else here[:-1]
                full = base + names
            # The longest known module prefix is what is used.
            for n in range(len(full), 0, -1):
                if tuple(full[:n]) in known:
                    yield tuple(full[:n]), number, line.strip()
                    break


def cycles(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

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
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    # Test files (`tests.rs`, compiled under #[cfg(test)]) may reach anywhere.
    files = sorted(p for p in SRC.rglob("*.rs") if p.stem != "tests")
    known = {tuple(module_of(p)) for p in files}
    known |= {tuple(m[:n]) for m in known for n in range(1, len(m) + 1)}
    top: dict[str, dict[str, str]] = {}
    inner: dict[str, dict[str, dict[str, str]]] = {}
    for path in files:
        here = module_of(path)
        if not here:
            continue  # lib.rs and main.rs wire everything together
        text = strip_tests(path.read_text())
        for target, number, line in targets(path, text, known):
            where = f"{path.relative_to(SRC.parent)}:{number}: {line}"
            if target[0] != here[0]:
                top.setdefault(here[0], {}).setdefault(target[0], where)
            elif len(here) > 1 and len(target) > 1 and target[1] != here[1]:
                graph = inner.setdefault(here[0], {})
                graph.setdefault(here[1], {}).setdefault(target[1], where)
    if "--graph" in sys.argv:
        for a in sorted(top):
            print(f"{a} → {', '.join(sorted(top[a]))}")
    found = [(None, c, top) for c in cycles(top)]
    found += [(m, c, g) for m, g in sorted(inner.items()) for c in cycles(g)]
    known = {line.strip() for line in KNOWN.read_text().splitlines() if line.strip() and not line.startswith("#")}
    failed = False
    names = set()
    for module, component, graph in found:
        name = " ↔ ".join(f"{module}/{c}" if module else c for c in component)
        names.add(name)
        tolerated = name in known
        failed |= not tolerated
        print(f"{'known' if tolerated else 'NEW'} module cycle: {name}")
        for a in component:
            for b in component:
                if b in graph.get(a, {}):
                    print(f"  {a} → {b}: {graph[a][b]}")
    for gone in sorted(known - names):
        failed = True
        print(f"{gone} is no longer a cycle: remove it from {KNOWN.name}")
    if not failed:
        print(f"no new module cycles ({len(names)} known ones left to break)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
