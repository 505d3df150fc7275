"""Every relative link in the repository's Markdown reaches a file in the repository, and every `#anchor` a heading.

The READMEs are where users read the findings; a link that moved with a renamed heading sends them nowhere, and
GitHub shows no error for it. Anchors follow GitHub's rule: the heading's text, lower-cased, with everything but
letters, digits, spaces, hyphens and underscores dropped and spaces turned into hyphens; a repeated heading gets
`-1`, `-2`, ... in order.
"""
import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import REPO

LINK = re.compile(r"\]\(([^)\s]+)\)")


def github_anchor(heading: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())      # a link in a heading keeps its text
    text = "".join(c for c in text.lower() if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(markdown: str) -> Iterator[str]:
    seen: dict[str, int] = {}
    in_code = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        heading = None if in_code else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            slug = github_anchor(heading.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            yield slug if count == 0 else f"{slug}-{count}"


def tracked_markdown():
    try:
        listed = subprocess.run(["git", "ls-files", "*.md"], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked Markdown files cannot be listed")
    return [REPO / name for name in listed.stdout.split()]


def test_github_anchor_follows_githubs_rule():
    assert github_anchor("The Muon recipe's changes, undone one at a time (three seeds)") == \
        "the-muon-recipes-changes-undone-one-at-a-time-three-seeds"
    assert github_anchor("Measured: `float32`, 2-core AMD EPYC (family 25)") == \
        "measured-float32-2-core-amd-epyc-family-25"
    assert github_anchor("See [the notes](docs/x.md) and 1.5 x") == "see-the-notes-and-15-x"
    assert list(anchors("# A\n## A\n```\n# not a heading\n```\n### A\n")) == ["a", "a-1", "a-2"]


def test_every_relative_link_and_anchor_resolves():
    pages = tracked_markdown()
    assert len(pages) >= 30
    broken, checked = [], 0
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+://|mailto:", target):
                continue
            path, _, fragment = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            checked += 1
            where = f"{page.relative_to(REPO)} -> {target}"
            if not dest.exists() or (dest != REPO and REPO not in dest.parents):
                broken.append(f"{where}: no such file in the repository")
            elif fragment and dest.suffix == ".md" and fragment not in set(anchors(dest.read_text())):
                broken.append(f"{where}: no heading with that anchor")
    assert checked > 250 and not broken, "\n".join(broken)


def test_the_readme_links_the_notes():
    readme = (REPO / "README.md").read_text()
    for note in ("docs/concepts.md", "docs/quiz.md", "docs/papers/README.md"):
        assert f"({note})" in readme, f"README.md does not link {note}"
