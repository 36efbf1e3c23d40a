"""Replies from a transformers instruct model, streamed as text pieces.

The default is SmolLM2-135M-Instruct from the bundled GGUF. transformers dequantises a GGUF on load
(10-30 s); the dequantised weights are then cached on disk (safetensors, keyed by the file and the library
versions), so later starts take about a second. Any hub model id or local folder can be named in
`machine.chat_model.model` instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from machine import bundled_models
from machine.ports import ChatMessage
from machine.settings import BUNDLED, ChatModelSettings

log = logging.getLogger(__name__)


def _dequantised_cache(gguf: Path, cache_dir: Path | None) -> Path | None:
    """The cache folder for a GGUF file's dequantised weights, keyed by the file and the library version."""
    if not gguf.is_file():
        return None
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{transformers.__version__}|{torch.__version__}"
    root = cache_dir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vrchat-companion"
    return root / "dequantised" / f"{gguf.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class _StopWhenSet(StoppingCriteria):
    """Stops generation at the next token once the event is set."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> bool:
        return self._event.is_set()


class TransformersChatModel:
    """A causal LM with a chat template; `stream` yields decoded text as it is generated."""

    def __init__(self, settings: ChatModelSettings) -> None:
        self._settings = settings
        reference, gguf_file = self._reference(settings)
        local_only = settings.model == BUNDLED
        dtype = _DTYPES.get(settings.dtype, "auto")
        cached = _dequantised_cache(Path(reference) / gguf_file, settings.cache_dir) if gguf_file else None
        if cached is not None and cached.is_dir():
            log.info("loading chat model from the dequantised cache %s", cached)
            reference, gguf_file, local_only = str(cached), None, True
        else:
            log.info("loading chat model %s%s", reference, f" ({gguf_file})" if gguf_file else "")
        self.tokenizer = AutoTokenizer.from_pretrained(
            reference, gguf_file=gguf_file, local_files_only=local_only
        )
        model = AutoModelForCausalLM.from_pretrained(
            reference, gguf_file=gguf_file, dtype=dtype, local_files_only=local_only
        )
        self.model = model.to(settings.device).eval()  # type: ignore[arg-type]  # transformers' stubs
        if cached is not None and gguf_file is not None:
            self._save_dequantised(cached)
        if self.tokenizer.chat_template is None:
            raise ValueError(
                f"machine.chat_model.model: {reference} has no chat template; name an instruct model"
            )

    def _save_dequantised(self, folder: Path) -> None:
        """Keep the dequantised weights, so the next start loads them in about a second."""
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder.parent))
            self.model.save_pretrained(staging)
            self.tokenizer.save_pretrained(staging)
            staging.rename(folder)
            log.info("saved the dequantised chat model to %s", folder)
        except OSError as exc:
            log.warning("could not cache the dequantised chat model in %s: %s", folder.parent, exc)
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _reference(settings: ChatModelSettings) -> tuple[str, str | None]:
        if settings.model == BUNDLED:
            folder, name = bundled_models.smollm2_gguf()
            return str(folder), name
        return settings.model, settings.gguf_file

    def prompt_ids(self, messages: list[ChatMessage]) -> torch.Tensor:
        """The chat-template token ids for `messages`, ending with the assistant's turn marker."""
        chat = [{"role": m.role, "content": m.content} for m in messages]
        ids = self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")
        return ids.to(self.model.device)

    def stream(self, messages: list[ChatMessage], cancel: threading.Event) -> Iterator[str]:
        """Yield text pieces; generation stops at end-of-turn, at `max_new_tokens`, or when the consumer
        closes this generator or sets `cancel` (checked before every new token)."""
        s = self._settings
        input_ids = self.prompt_ids(messages)
        stop = threading.Event()
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        generation: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "streamer": streamer,
            "max_new_tokens": s.max_new_tokens,
            "repetition_penalty": s.repetition_penalty,
            "no_repeat_ngram_size": s.no_repeat_ngram_size,
            "stopping_criteria": StoppingCriteriaList([_StopWhenSet(stop), _StopWhenSet(cancel)]),
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        }
        if s.temperature > 0:
            generation.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        else:
            generation.update(do_sample=False)
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                if s.seed is not None:
                    torch.manual_seed(s.seed)
                with torch.inference_mode():
                    self.model.generate(**generation)
            except BaseException as exc:
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=generate, name="chat-generate", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if piece:
                    yield piece
        finally:
            stop.set()
            worker.join()
        if failure:
            raise RuntimeError(f"the chat model failed while generating: {failure[0]}") from failure[0]
