"""Telling small talk from inputs worth a recall: greetings, thanks, "yeah", mic checks recall nothing.

Recall compares an input's embedding with every memory; at a threshold low enough to find paraphrased
questions, content-free inputs ("hi", "okay", "how are you") also reach some memory and bring back something
unrelated. `SmallTalkGate` recognises such inputs from the same embedding: an input is small talk when its
cosine similarity to the nearest of `PROTOTYPES`, a fixed list of small-talk phrases embedded once with the
memories' embedder, reaches the gate threshold. The input's vector is already computed for recall, so the
gate costs one matrix-vector product.

The prototypes were written independently of the benchmark set (bench/data/recall_set.json): none of its
small-talk inputs or questions was copied or edited into them, so the benchmark's figures for the gate are
measured on unseen inputs.
"""

from __future__ import annotations

import threading

import numpy as np

from memory_store.embedding import Embedder, Vectors

PROTOTYPES: tuple[str, ...] = (
    # greetings
    "hi",
    "hello",
    "hey",
    "hey there",
    "hello there",
    "yo",
    "good morning",
    "good evening",
    "hey, nice to meet you",
    "hi everyone",
    "oh hey, it's you again",
    "welcome back",
    # farewells
    "bye",
    "goodbye",
    "see you later",
    "see ya",
    "good night",
    "I have to go now",
    "gotta go, bye",
    "talk to you later",
    "catch you later",
    "I'm heading out",
    "take care",
    # thanks and apologies
    "thanks",
    "thank you",
    "thank you so much",
    "thanks a lot",
    "I appreciate it",
    "no problem",
    "you're welcome",
    "sorry",
    "my bad",
    "sorry about that",
    # how are you, what's up
    "how are you",
    "how's it going",
    "how are you doing today",
    "what's up",
    "what's going on",
    "how have you been",
    "I'm good, and you?",
    "I'm fine, thanks",
    "not much",
    "nothing much, you?",
    # backchannels, agreement, yes and no
    "yeah",
    "yes",
    "yep",
    "no",
    "nope",
    "okay",
    "ok cool",
    "sure",
    "alright",
    "right",
    "true",
    "exactly",
    "I see",
    "oh really?",
    "uh huh",
    "mhm",
    "got it",
    "fair enough",
    "I agree",
    "maybe",
    "I don't know",
    # fillers and pauses
    "um",
    "uh",
    "hmm",
    "well",
    "so yeah",
    "anyway",
    "wait",
    "hold on a second",
    "one sec",
    "never mind",
    "brb",
    "I'm back",
    # reactions, laughter
    "haha",
    "lol",
    "hahaha that's funny",
    "wow",
    "nice",
    "cool",
    "awesome",
    "that's crazy",
    "oh no",
    "interesting",
    # compliments without content
    "you're cute",
    "you're so nice",
    "I like you",
    "you're awesome",
    # microphone and presence checks
    "can you hear me",
    "can you hear me now?",
    "testing, testing, one two three",
    "mic check",
    "is my mic working",
    "am I too loud?",
    "sorry, I was muted",
    "hello? is anyone there?",
    "are you still there?",
    "can you say that again?",
)
"""Content-free phrases a user says to a companion; an input this close to one of them recalls nothing."""


class SmallTalkGate:
    """Decides from an input's embedding whether it is small talk, for which recall is skipped.

    An input is small talk when its cosine similarity to the nearest of `PROTOTYPES` is at least
    `threshold`; a threshold of 1.0 or more turns the gate off (nothing is small talk). The
    prototypes are embedded on first use, once, under a lock, so the gate can be shared between threads.
    """

    def __init__(self, embedder: Embedder, threshold: float) -> None:
        self._embedder = embedder
        self._threshold = threshold
        self._prototypes: Vectors | None = None
        self._lock = threading.Lock()

    def _prototype_vectors(self) -> Vectors:
        with self._lock:
            if self._prototypes is None:
                self._prototypes = np.asarray(self._embedder.embed(PROTOTYPES), dtype=np.float32)
            return self._prototypes

    def load(self) -> None:
        """Embed the prototypes now (loading the embedding model) rather than in the first turn."""
        self._prototype_vectors()

    def similarity(self, vector: Vectors) -> float:
        """The cosine similarity of `vector` (1-D, unit length) to its nearest prototype."""
        return float(np.max(self._prototype_vectors() @ vector))

    def is_small_talk(self, vector: Vectors) -> bool:
        """Whether the input whose unit-length embedding is `vector` is small talk (recall nothing)."""
        if self._threshold >= 1.0:
            return False
        return self.similarity(vector) >= self._threshold
