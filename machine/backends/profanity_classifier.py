"""The default content classifier of :mod:`machine.reply.checks`: how likely a reply is offensive.

The default is alt-profanity-check (a maintained offline linear model, well under a millisecond per
sentence). Users with internet may add any transformers text-classification model by hub id or folder
(e.g. ``unitary/toxic-bert``, :mod:`machine.backends.transformers_classifier`).
"""

from __future__ import annotations

from profanity_check import predict_prob  # ~3 s (scikit-learn and the model): paid at start, not mid-reply


def profanity_probability(text: str) -> float:
    """alt-profanity-check's probability that `text` is offensive."""
    return float(predict_prob([text])[0])
