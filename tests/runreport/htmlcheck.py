"""Checks of a report's HTML, shared by the report's and the drill's tests:
balanced tags, elements by class, nothing that reaches outside the file."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import ClassVar

# Hostile text for names, targets, findings: none of it may reach the output unescaped.
HOSTILE = "<script>alert(1)</script> & \"quotes\" 'single' <b>"


class Tags(HTMLParser):
    """Opened and closed tags, to check the document is balanced."""

    VOID: ClassVar[set[str]] = {"meta", "br", "img", "input", "link", "hr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.seen: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()


def parse(html: str) -> Tags:
    """The page's tags; every tag opened is closed, in order (SVG's empty ones self-closed)."""
    tags = Tags()
    tags.feed(html)
    tags.close()
    assert not tags.errors and tags.stack == [], (tags.errors, tags.stack)
    return tags


def classes(tags: Tags, tag: str, css: str) -> list[dict[str, str | None]]:
    return [a for t, a in tags.seen if t == tag and css in (a.get("class") or "").split()]


def self_contained(html: str) -> None:
    """No URL, no script, no stylesheet or image to fetch, no web font."""
    assert not re.search(r"(?i)https?:", html)
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert " src=" not in html and " href=" not in html
    assert "@import" not in html and "url(" not in html and "@font-face" not in html


def escaped(text: str) -> None:
    """The hostile text never appears as markup."""
    assert "<script>" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
