"""A transformers text-classification model as a content classifier (a reply checks backend).

Any model by hub id or folder (e.g. ``unitary/toxic-bert``); its configured labels are the bad ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from transformers import pipeline

from companion_settings import ConfigError

log = logging.getLogger(__name__)


class TextClassifier:
    """A transformers sequence-classification model; scores a text by its most likely bad label."""

    def __init__(self, model: str, bad_labels: Sequence[str], device: str = "cpu") -> None:
        try:
            self._pipeline: Any = pipeline("text-classification", model=model, device=device, top_k=None)
        except (OSError, ValueError) as exc:  # a missing folder, an invalid hub id
            raise ConfigError(
                f"machine.reply_checks.classifier_model: cannot load {model!r} ({exc}); name a "
                "text-classification model folder, or a hub id when the hub is reachable, or null"
            ) from None
        known = set((self._pipeline.model.config.id2label or {}).values())
        self._bad = {label for label in bad_labels if label in known}
        if not self._bad:
            raise ConfigError(
                f"machine.reply_checks.classifier_labels: none of {list(bad_labels)} is a label of "
                f"{model!r}; its labels are {sorted(known)}"
            )
        log.info("content classifier %s loaded (bad labels: %s)", model, sorted(self._bad))

    def __call__(self, text: str) -> float:
        """The highest score among the bad labels, in [0, 1]."""
        scores = self._pipeline(text, truncation=True)[0]
        return max((float(s["score"]) for s in scores if s["label"] in self._bad), default=0.0)
