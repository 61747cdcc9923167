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


@register_classifier("model")
def model(cfg: AppConfig) -> Classifier:
    """Trained heads on frozen offline encoders (e5-small, MiniLM); see pipeline/nlp/model.py."""
    from pipeline.nlp.encoders import BUILTIN_ENCODERS
    from pipeline.nlp.model import ModelClassifier
    from pipeline.nlp.taxonomy import load_taxonomy

    c = cfg.classifier
    path = cfg.resolve_path(c.taxonomy) if c.taxonomy else None

    def local(value: str | None) -> str | None:
        """A path relative to the config file if it exists there; else the value (a name/id)."""
        if value is None or value in ("auto", *BUILTIN_ENCODERS):
            return value
        resolved = cfg.resolve_path(value)
        return str(resolved) if resolved.exists() else value

    return ModelClassifier(
        taxonomy=load_taxonomy(path),
        products=c.products,
        models_dir=cfg.resolve_path(c.models_dir) if c.models_dir else None,
        encoder=local(c.encoder) or "auto",
        quantize=c.quantize,
        e5_runtime=c.e5_runtime,
        sequence_model=local(c.sequence_model),
        batch_size=c.batch_size,
    )
