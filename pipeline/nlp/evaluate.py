"""``careradar eval``: score a classifier on a labelled file, next to the lexicon baseline.

The file is CSV/TSV/JSONL with a text column and a label column. Labels per task:

* ``sentiment``: negative / neutral / positive (``neg``/``neu``/``pos`` accepted);
* ``complaint``: yes / no (``true``/``false``/``1``/``0`` accepted);
* ``urgency``: low / normal / high;
* ``topics``: a taxonomy topic name (several separated by ``|`` or ``;``; a prediction counts
  as right when the model's top topic is one of them); ``none`` for "no topic".

Both classifiers see exactly the same texts (as :class:`~pipeline.items.Item` objects with an
optional ``language`` column) and are scored with the same
:func:`~pipeline.nlp.train.metrics`: accuracy, macro-F1, per-class precision/recall/F1, and the
confusion matrix (rows = gold, columns = predicted).

**Files with fewer sentiment labels than the model.** Most review corpora are binary (negative /
positive, no neutral). Scored as they are, every ``neutral`` answer counts as wrong and the
neutral column drags macro-F1 towards 0.5 whatever the model knows. So when a sentiment file
uses only some of the three labels, each classifier is also scored on the choice among the
file's own labels (the most probable of them by ``sentiment_scores``), reported as
``gold_labels_only``, which is how such corpora are usually scored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pipeline.errors import ConfigError
from pipeline.items import Channel, Classification, Item
from pipeline.nlp.base import Classifier
from pipeline.nlp.train import TASKS, Example, load_labelled_file, metrics, own_label_metrics

__all__ = ["EVAL_TASKS", "EvalResult", "evaluate", "read_eval_file"]

EVAL_TASKS: Final = ("sentiment", "complaint", "urgency", "topics")
NO_TOPIC: Final = "none"


@dataclass
class EvalResult:
    task: str
    path: str
    n: int
    results: dict[str, dict[str, Any]]  # classifier version -> metrics

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "file": self.path, "n": self.n, "classifiers": self.results}


def read_eval_file(path: Path, *, task: str, text_col: str, label_col: str) -> list[Example]:
    """The labelled rows; one readable ConfigError (file, column or row, hint) otherwise."""
    if task not in EVAL_TASKS:
        raise ConfigError(
            f"unknown task {task!r}; valid values are: {', '.join(EVAL_TASKS)}",
            hint="pass --task sentiment, complaint, urgency or topics",
        )
    if not path.is_file():
        raise ConfigError(f"{path}: file not found", hint="check the path given to --data")
    return load_labelled_file(path, task=task, text_col=text_col, label_col=label_col)


def _prediction(task: str, c: Classification) -> str:
    if task == "sentiment":
        return c.sentiment.value
    if task == "complaint":
        return "yes" if c.is_complaint else "no"
    if task == "urgency":
        return c.urgency.value
    return max(c.topics.items(), key=lambda kv: kv[1])[0] if c.topics else NO_TOPIC


def _gold_topics(label: str) -> set[str]:
    return {p.strip() for p in re.split(r"[|;]", label) if p.strip()} or {NO_TOPIC}


def evaluate(
    path: Path,
    *,
    task: str,
    text_col: str,
    label_col: str,
    classifiers: Sequence[Classifier],
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
    topic_names: Sequence[str] = (),
) -> EvalResult:
    """Classify every row with each classifier and score the predictions against the labels."""
    rows = read_eval_file(path, task=task, text_col=text_col, label_col=label_col)
    now = datetime.now(UTC)
    items = [
        Item(
            source="eval",
            channel=Channel.SOCIAL,
            external_id=str(i),
            text=row.text,
            created_at=now,
            language=row.language if row.language != "unknown" else None,
        )
        for i, row in enumerate(rows)
    ]
    results: dict[str, dict[str, Any]] = {}
    for classifier in classifiers:
        predicted: list[str] = []
        scores: list[Mapping[str, float]] = []
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            for c in classifier.classify(chunk):
                predicted.append(_prediction(task, c))
                scores.append(c.sentiment_scores)
            if progress is not None:
                progress(len(chunk))
        gold = [row.label for row in rows]
        if task == "topics":
            # Multi-label gold: the top topic is right when it is any of the gold topics.
            gold = [
                p if p in _gold_topics(g) else sorted(_gold_topics(g))[0]
                for g, p in zip(gold, predicted, strict=True)
            ]
            labels = [*sorted({*topic_names, *gold, *predicted} - {NO_TOPIC}), NO_TOPIC]
        else:
            labels = list(TASKS[task])
        results[classifier.version] = metrics(gold, predicted, labels)
        own = own_label_metrics(gold, scores, TASKS[task]) if task == "sentiment" else None
        if own is not None:
            results[classifier.version]["gold_labels_only"] = own
    return EvalResult(task=task, path=str(path), n=len(rows), results=results)
