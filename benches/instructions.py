#!/usr/bin/env python3
"""Instructions per iteration of a criterion benchmark, counted by callgrind.

Wall time on a shared 2-core machine swings by tens of percent between runs of the same
code; instruction counts do not. This runs one benchmark of a built bench binary under
callgrind for a few seconds of criterion's profile mode, counts only instructions inside the
named functions (and what they call), and divides by how many times the first one was called.

    cargo bench --no-run --bench ingest
    benches/instructions.py target/release/deps/ingest-<hash> ingest_json/1000obs_1per_entry \\
        perfwatch::ingest::parse::json::parse perfwatch::ingest::sink::IngestBatch::finish

Compare two builds (before and after a change) with the same arguments; the figure is per
call of the first function, so the number of iterations criterion ran does not matter.
"""
import re
import subprocess
import sys
import tempfile


def calls_of(profile: str, symbol: str) -> int:
    """Calls of `symbol` from other functions (recursion is not an iteration)."""
    names, calls, caller, callee = {}, 0, None, None
    for line in open(profile):
        m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
        if m:
            kind, ident, name = m.groups()
            if name:
                names[ident] = name.strip()
            if kind == "fn":
                caller = names.get(ident)
            else:
                callee = names.get(ident)
            continue
        m = re.match(r"calls=(\d+)", line)
        if m and callee == symbol and caller != symbol:
            calls += int(m.group(1))
    return calls


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    binary, bench, symbols = sys.argv[1], sys.argv[2], sys.argv[3:]
    with tempfile.NamedTemporaryFile(suffix=".callgrind") as out:
        toggles = [f"--toggle-collect={s}" for s in symbols]
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out.name}", "--collect-atstart=no",
                   *toggles, binary, "--bench", "--profile-time", "3", f"^{re.escape(bench)}$"]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        total = next(int(l.split()[1]) for l in open(out.name) if l.startswith("summary:"))
        calls = calls_of(out.name, symbols[0])
    if calls == 0:
        sys.exit(f"{symbols[0]} was never called: check the symbol with nm -C {binary}")
    print(f"{bench}: {total / calls:,.0f} instructions per call of {symbols[0]} ({calls} calls)")


if __name__ == "__main__":
    main()
