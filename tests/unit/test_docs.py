"""The README and docs/ as a reader follows them: the README stays short (≤ 200 lines, the rest in docs/), every
relative link in README.md and docs/*.md resolves to an existing file and, with a #fragment, to a heading of that
page (GitHub's anchors), and every `docs/<page>.md#anchor` that code, tests or config files cite exists too.
Pure Python, no network: links to http(s) and mailto are not followed.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200
# Where code comments and docstrings cite docs pages; tests/unit/test_docs.py itself only has examples.
CITING = ["include", "dags", "plugins", "tests", "bench", ".ci", "config"]
CITING_FILES = ["Makefile", "Dockerfile", "docker-compose.yaml", ".env.example", "requirements.txt", "pyproject.toml"]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CITATION = re.compile(r"\bdocs/([\w.-]+\.md)(?:#([\w-]+))?")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a link or heading inside ``` is an example, not one)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.replace("`", "").replace("*", "").lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page, with GitHub's -1, -2 … suffixes for repeated headings."""
    seen: dict[str, int] = {}
    result = set()
    for line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def links(page: Path) -> list[str]:
    """The relative link targets of a page (outside code), as written."""
    targets = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):
                targets.append(target)
    return targets


def broken(page: Path, target: str) -> str | None:
    """Why ``target`` (a link written in ``page``) does not resolve, or None."""
    path_part, _, fragment = target.partition("#")
    dest = (page.parent / path_part).resolve() if path_part else page
    if not dest.exists():
        return f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}"
    if fragment and dest.suffix == ".md" and fragment not in anchors(dest):
        return f"{target}: no heading #{fragment} in {dest.relative_to(ROOT)}"
    return None


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Sync and tracks (for every output, chunked or not)", "sync-and-tracks-for-every-output-chunked-or-not"),
        ("Uploads, the watcher and reprocessing", "uploads-the-watcher-and-reprocessing"),
        ("S3 layout (bucket from the `vodflow_bucket` setting)", "s3-layout-bucket-from-the-vodflow_bucket-setting"),
        ("Speed, long videos and per-title ladders", "speed-long-videos-and-per-title-ladders"),
    ],
)
def test_slug_follows_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_readme_links_every_docs_page() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README)}
    missing = [p.name for p in PAGES[1:] if p.resolve() not in linked]
    assert not missing, f"docs pages the README does not link: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    problems = [why for target in links(page) if (why := broken(page, target))]
    assert not problems, "\n".join(problems)


def cited() -> list[tuple[Path, str, str]]:
    """(file, page, anchor) for every docs/<page>.md[#anchor] cited outside README and docs/."""
    files = [ROOT / name for name in CITING_FILES if (ROOT / name).is_file()]
    for folder in CITING:
        files += [p for p in (ROOT / folder).rglob("*") if p.is_file() and "node_modules" not in p.parts]
    found = []
    for path in files:
        if path == Path(__file__).resolve() or path.suffix in {".js", ".mp4", ".jpg", ".png", ".pyc"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        found += [(path, page, anchor) for page, anchor in CITATION.findall(text)]
    return found


def test_cited_docs_pages_exist() -> None:
    problems = []
    for path, page, anchor in cited():
        dest = ROOT / "docs" / page
        where = path.relative_to(ROOT)
        if not dest.is_file():
            problems.append(f"{where}: docs/{page} does not exist")
        elif anchor and anchor not in anchors(dest):
            problems.append(f"{where}: docs/{page} has no heading #{anchor}")
    assert not problems, "\n".join(problems)
