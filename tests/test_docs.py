"""The README and the docs/ pages link only to files and headings that exist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
MAX_README_LINES = 250

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_COMMENT = re.compile(r"<!--.*?-->")
_INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]*)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?([^\s<>]+)>?")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _prose_lines(page: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) of the lines outside code fences, sans comments."""
    fence = ""
    for number, line in enumerate(page.read_text().splitlines(), start=1):
        opening = _FENCE.match(line)
        if fence:
            if opening and opening.group(1)[0] == fence[0]:
                fence = ""
            continue
        if opening:
            fence = opening.group(1)
            continue
        yield number, _COMMENT.sub("", line)


def slug(heading: str) -> str:
    """Return GitHub's anchor of a heading: lowercase, punctuation dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@lru_cache(maxsize=None)
def anchors(page: Path) -> frozenset[str]:
    """Return the anchors of a page's headings (repeats get -1, -2, ...)."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in _prose_lines(page):
        heading = _HEADING.match(line)
        if heading is None:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def links(page: Path) -> list[tuple[int, str]]:
    """Return every link target of a page with its line number."""
    found = []
    for number, line in _prose_lines(page):
        text = _CODE_SPAN.sub("", line)
        targets = _INLINE_LINK.findall(text) + _REFERENCE_LINK.findall(text)
        found += [(number, target) for target in targets]
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Return a description of each relative link that leads out of ``root``."""
    broken = []
    for number, target in links(page):
        if _SCHEME.match(target) or target.startswith("//"):
            continue
        path_part, _, fragment = target.partition("#")
        where = f"{page.name}:{number}: {target}"
        resolved = (page.parent / unquote(path_part)).resolve()
        if not path_part:
            resolved = page
        if not resolved.is_relative_to(root) or not resolved.exists():
            broken.append(f"{where}: no such file")
        elif fragment and (
            resolved.suffix != ".md" or unquote(fragment) not in anchors(resolved)
        ):
            broken.append(f"{where}: no heading with that anchor")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_existing_files_and_headings(page: Path) -> None:
    """Each relative link names a file of the repository and, if any, its heading."""
    assert broken_links(page) == []


def test_readme_stays_short() -> None:
    """README.md is an overview of at most 250 lines; details live in docs/."""
    assert len(README.read_text().splitlines()) <= MAX_README_LINES


def test_every_docs_page_is_linked_from_the_readme() -> None:
    """Each docs/*.md page is reachable from a link in README.md."""
    linked = {
        (ROOT / unquote(target.partition("#")[0])).resolve()
        for _, target in links(README)
        if not _SCHEME.match(target)
    }
    assert DOCS, "docs/ holds no pages"
    assert [p.name for p in DOCS if p.resolve() not in linked] == []


def test_checker_reports_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    """A link to a missing file or heading is reported; code and URLs are not."""
    (tmp_path / "other.md").write_text("# Other page\n\n## Its `flags`, 2.\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#its-flags-2) [self](#page) [web](https://x.org)\n"
        "[gone](missing.md) [bad](other.md#nowhere) `[code](missing.md)`\n"
        "```\n[fenced](missing.md)\n```\n"
    )
    assert broken_links(page, tmp_path) == [
        "page.md:4: missing.md: no such file",
        "page.md:4: other.md#nowhere: no heading with that anchor",
    ]
