#!/usr/bin/env python3
"""Fails when a link in the documentation points nowhere.

Checks every relative Markdown link (and HTML `src`/`href`) in README.md and docs/*.md (code blocks and code spans
aside): the file or directory must exist, and a `#anchor` must match a heading of the target
Markdown file by GitHub's rules (lowercase; punctuation other than `-` and `_` dropped; spaces
become `-`; a repeated heading gets `-1`, `-2` …). Also checks the `runbook:` annotations of
rules/*.yaml and rules/tests/*.yaml, which name a file and anchor from the repository root.
Prints each broken link as `file:line: link: reason` and exits 1 if there is any.

    .ci/doc-links.py
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^ {0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:img|a)\s[^>]*?\b(?:src|href)=\"([^\"]+)\"")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s.*)?$", re.M)
RUNBOOK = re.compile(r"\brunbook:\s*\"?([^\"\s,}]+)")


def without_fences(text: str) -> str:
    """Blanks fenced code blocks, keeping line breaks so line numbers stay right."""
    lines, fenced = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            line = ""
        lines.append("" if fenced else line)
    return "\n".join(lines)


def without_code(text: str) -> str:
    """Blanks fenced blocks and code spans (a link in either is not a link)."""
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), without_fences(text))


def slug(heading: str) -> str:
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: pathlib.Path) -> set[str]:
    found, count = set(), {}
    for line in without_fences(path.read_text()).split("\n"):
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            found.add(f"{base}-{count[base]}" if base in count else base)
            count[base] = count.get(base, 0) + 1
    return found


def check(source: pathlib.Path, line: int, link: str, base: pathlib.Path) -> str | None:
    if re.match(r"^[a-z][a-z0-9+.-]*:", link, re.I):  # http:, https:, mailto: …
        return None
    target, _, anchor = link.partition("#")
    path = (base / target).resolve() if target else source
    if not path.exists():
        return f"{source.relative_to(ROOT)}:{line}: {link}: no such file"
    if anchor and path.suffix == ".md" and anchor not in anchors(path):
        return f"{source.relative_to(ROOT)}:{line}: {link}: no heading #{anchor} in {path.relative_to(ROOT)}"
    return None


def main() -> int:
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = without_code(doc.read_text())
        for m in [*LINK.finditer(text), *REFERENCE.finditer(text), *HTML_LINK.finditer(text)]:
            line = text.count("\n", 0, m.start(1)) + 1
            broken.append(check(doc, line, m.group(1), doc.parent))
    for rules in sorted([*(ROOT / "rules").glob("*.yaml"), *(ROOT / "rules" / "tests").glob("*.yaml")]):
        text = rules.read_text()
        for m in RUNBOOK.finditer(text):
            broken.append(check(rules, text.count("\n", 0, m.start(1)) + 1, m.group(1), ROOT))
    broken = [b for b in broken if b]
    print("\n".join(broken) or "doc links: all resolve")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
