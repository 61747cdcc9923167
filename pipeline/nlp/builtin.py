"""Registers the classifiers that ship with careradar under their config names."""

from __future__ import annotations

from pipeline.config import AppConfig
from pipeline.nlp.base import Classifier
from pipeline.registry import register_classifier


@register_classifier("lexicon")
def lexicon(cfg: AppConfig) -> Classifier:
    """VADER sentiment + keyword rules: the low-resource baseline, no model weights needed."""
    from pipeline.nlp.lexicon import LexiconClassifier
    from pipeline.nlp.taxonomy import load_taxonomy

    path = cfg.resolve_path(cfg.classifier.taxonomy) if cfg.classifier.taxonomy else None
    return LexiconClassifier(taxonomy=load_taxonomy(path), products=cfg.classifier.products)
