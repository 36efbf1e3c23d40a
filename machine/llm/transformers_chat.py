"""Replies from a transformers instruct model, streamed as text pieces.

The default is SmolLM2-135M-Instruct from the bundled GGUF (dequantised by transformers on load); any hub
model id or local folder can be named in `machine.chat_model.model` instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import torch
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
        log.info("loading chat model %s%s", reference, f" ({gguf_file})" if gguf_file else "")
        self.tokenizer = AutoTokenizer.from_pretrained(reference, gguf_file=gguf_file, local_files_only=local_only)
        self.model = AutoModelForCausalLM.from_pretrained(
            reference, gguf_file=gguf_file, torch_dtype=dtype, local_files_only=local_only
        ).to(settings.device)
        self.model.eval()
        if self.tokenizer.chat_template is None:
            raise ValueError(
                f"machine.chat_model.model: {reference} has no chat template; name an instruct model"
            )

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
