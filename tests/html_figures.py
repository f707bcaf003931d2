"""Read the figures out of an HTML cost report: every `data-fig` element's exact value and shown text."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path


class Figures(HTMLParser):
    """Collects every element's data-fig name -> [data-value, shown text], counts tags, and keeps
    every aria-label (the budget bars say "75% of budget")."""

    def __init__(self):
        super().__init__()
        self.figs, self._open, self.tags, self.labels = {}, None, {}, []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        a = dict(attrs)
        if "aria-label" in a:
            self.labels.append(a["aria-label"])
        if "data-fig" in a:
            self._open = a["data-fig"]
            self.figs[self._open] = [a["data-value"], ""]

    def handle_data(self, data):
        if self._open:
            self.figs[self._open][1] += data

    def handle_endtag(self, tag):
        self._open = None


def read(source: str | Path) -> Figures:
    figs = Figures()
    figs.feed(source.read_text(encoding="utf-8") if isinstance(source, Path) else source)
    return figs
