"""The classifier interface every model implements (lexicon baseline, trained heads, ...)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipeline.items import Classification, Item


class Classifier(Protocol):
    """Turns items into classifications, one per item, in the same order.

    ``version`` is stored on every classification row (``lexicon-1``, ``minilm-heads-3`` ...) so
    relabelling and retraining stay traceable; an item is classified again only when its text
    changed or the configured version differs from the one it was classified with.
    """

    version: str

    def classify(self, items: Sequence[Item]) -> list[Classification]: ...
