"""Replies from a transformers instruct model, streamed as text pieces.

The default is SmolLM2-135M-Instruct from the bundled GGUF. transformers dequantises a GGUF on load
(10-30 s); the dequantised weights are then cached on disk (safetensors, keyed by the file and the library
versions) in the platform's cache folder (`machine.chat_model.cache_dir` names another), so later
starts take about a second. Any hub model id or local folder can be named in
`machine.chat_model.model` instead, with `device`, `dtype`, `attn_implementation`, 4-bit loading
(bitsandbytes, CUDA only) and `torch.compile` as options.

A vision-language model (`machine.chat_model.sees_images: true` with a hub id or folder such as
HuggingFaceTB/SmolVLM-256M-Instruct) is loaded with its processor; every prompt then goes through the
processor's chat template, and a message's image (the bot's view, a JPEG made in memory) is decoded and
shown to the model with it. A prompt with an image is prefilled whole and its cache is not kept.

Prompt reuse: the attention cache of the last prompt is kept, and the next prompt reuses it for the
tokens the two share (at least the persona, usually the whole history before the new exchange), so only
the new tokens are prefilled.

On the CPU a 135M model is bound by per-operation overhead, not arithmetic: measured on two cores, one
torch thread with the linear layers dynamically quantised to int8 decodes about twice as fast (25 tokens/s)
as two threads in float32 (12 tokens/s once other threads of the process have used torch's thread pool),
and leaves the other core to speech recognition and synthesis. Both are settings (`cpu_threads`,
`quantize`); see the README's latency section for the figures. int8 activations are scaled per forward
call, so with prompt reuse a reply can differ in wording from the one the same prompt gets prefilled at
once (in float32 the two are the same).
"""

from __future__ import annotations

import copy
import importlib.util
import io
import logging
import threading
import warnings
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from transformers import (
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    DynamicCache,
    LogitsProcessor,
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from companion_settings import ConfigError
from machine.backends import bundled_models
from machine.backends.dequantised_cache import dequantised_folder, save_dequantised
from machine.ports import ChatMessage, ReplyStream, Sampling, reply_seed
from machine.settings import BUNDLED, ChatModelSettings

log = logging.getLogger(__name__)


_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class _StopWhenSet(StoppingCriteria):
    """Stops generation at the next token once the event is set."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> bool:
        return self._event.is_set()


class _ReplyOnly(LogitsProcessor):
    """Runs a logits processor on the generated tokens only, not on the prompt."""

    def __init__(self, processor: LogitsProcessor, prompt_length: int) -> None:
        self._processor = processor
        self._prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        reply = input_ids[:, self._prompt_length :]
        if reply.shape[-1] == 0:
            return scores
        return self._processor(reply, scores)


class TransformersChatModel:
    """A causal LM with a chat template; `stream` yields decoded text as it is generated."""

    def __init__(self, settings: ChatModelSettings) -> None:
        self._settings = settings
        self._processor: Any = None
        """A vision-language model's processor (its chat template and image preprocessing), else None."""
        reference, gguf_file = self._reference(settings)
        if settings.sees_images:
            self._load_seeing(settings, reference, gguf_file)
        else:
            self._load_reading(settings, reference, gguf_file)
        if settings.device == "cpu":
            _use_cpu(self, settings)
        if (self._processor or self.tokenizer).chat_template is None:
            raise ValueError(
                f"machine.chat_model.model: {reference} has no chat template; name an instruct model"
            )
        if settings.compile:
            log.info("compiling the chat model with torch.compile (the first reply will be slow)")
            self.model.forward = torch.compile(self.model.forward, dynamic=True)
        self._last: tuple[torch.Tensor, DynamicCache] | None = None
        """The ids of the last generated sequence and its attention cache (for prompt reuse)."""
        self.reused_tokens = 0
        """How many prompt tokens the last reply took from the kept cache instead of prefilling them."""

    def _load_seeing(self, settings: ChatModelSettings, reference: str, gguf_file: str | None) -> None:
        """A vision-language model and its processor, from a hub id or folder."""
        if gguf_file is not None:
            raise ConfigError(
                "machine.chat_model.gguf_file: a GGUF file loads a text-only model here; with sees_images "
                "name a vision-language model id or folder with safetensors weights in "
                "machine.chat_model.model (e.g. HuggingFaceTB/SmolVLM-256M-Instruct), or serve one"
            )
        log.info("loading vision-language chat model %s", reference)
        self._processor = AutoProcessor.from_pretrained(reference)
        self.tokenizer = self._processor.tokenizer
        options = _load_options(settings, None)
        model = AutoModelForImageTextToText.from_pretrained(
            reference, dtype=_DTYPES.get(settings.dtype, "auto"), **options
        )
        self.model = _placed(model, settings, options)

    def _load_reading(self, settings: ChatModelSettings, reference: str, gguf_file: str | None) -> None:
        """A text-only causal LM and its tokenizer; a GGUF file is dequantised once and kept in the cache."""
        options = _load_options(settings, gguf_file)
        local_only = settings.model == BUNDLED
        dtype = _DTYPES.get(settings.dtype, "auto")
        cached = dequantised_folder(Path(reference) / gguf_file, settings.cache_dir) if gguf_file else None
        if cached is not None and cached.is_dir():
            log.info("loading chat model from the dequantised cache %s", cached)
            reference, gguf_file, local_only = str(cached), None, True
        else:
            log.info("loading chat model %s%s", reference, f" ({gguf_file})" if gguf_file else "")
        self.tokenizer = AutoTokenizer.from_pretrained(
            reference, gguf_file=gguf_file, local_files_only=local_only
        )
        model = AutoModelForCausalLM.from_pretrained(
            reference, gguf_file=gguf_file, dtype=dtype, local_files_only=local_only, **options
        )
        self.model = _placed(model, settings, options)
        if cached is not None and gguf_file is not None:
            save_dequantised(cached, self.model, self.tokenizer)

    @staticmethod
    def _reference(settings: ChatModelSettings) -> tuple[str, str | None]:
        if settings.model == BUNDLED:
            folder, name = bundled_models.smollm2_gguf()
            return str(folder), name
        return settings.model, settings.gguf_file

    def prompt_ids(self, messages: list[ChatMessage]) -> torch.Tensor:
        """The chat-template token ids for `messages`, ending with the assistant's turn marker, or, when
        the last message is the assistant's (a reply begun), with that message left open to go on from."""
        ids: torch.Tensor = self._prompt_inputs(messages)["input_ids"]
        return ids

    def _prompt_inputs(self, messages: list[ChatMessage]) -> dict[str, torch.Tensor]:
        """The model's inputs for `messages`: their token ids, and for a model that sees, the processed
        images of the messages that carry one."""
        begun = bool(messages) and messages[-1].role == "assistant"
        if self._processor is None:
            chat = [{"role": m.role, "content": m.content} for m in messages]
            ids = self.tokenizer.apply_chat_template(
                chat, add_generation_prompt=not begun, continue_final_message=begun, return_tensors="pt"
            )
            return {"input_ids": ids.to(self.model.device)}
        inputs = self._processor.apply_chat_template(
            [{"role": m.role, "content": _parts(m)} for m in messages],
            add_generation_prompt=not begun,
            continue_final_message=begun,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        return dict(inputs.to(self.model.device).to(self.model.dtype))  # dtype: the image features only

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        """The exact number of prompt tokens for `messages`."""
        return int(self.prompt_ids(messages).shape[-1])

    def _reusable_cache(self, input_ids: torch.Tensor) -> DynamicCache | None:
        """A copy of the kept cache cut to the tokens this prompt shares with the last sequence."""
        self.reused_tokens = 0
        if not self._settings.reuse_persona_cache or self._last is None:
            return None
        ids, cache = self._last
        n = min(len(ids), input_ids.shape[-1]) - 1  # at least one prompt token is left to prefill
        differs = (ids[:n] != input_ids[0, :n]).nonzero()
        shared = int(differs[0]) if len(differs) else n
        if shared < 1:
            return None
        reused = copy.deepcopy(cache)
        try:
            reused.crop(shared)
        except (NotImplementedError, ValueError, AttributeError):
            return None  # a cache layout that cannot be cut (e.g. sliding windows): prefill it all
        self.reused_tokens = shared
        return reused

    def _anti_repetition(self, sampling: Sampling, prompt_length: int) -> LogitsProcessorList:
        """The repetition penalty and the n-gram ban, over the reply only: applied to the prompt too (as
        transformers does by default), they forbid the persona's and the history's words, and the longer
        the history, the more the reply degrades into gibberish."""
        processors: list[LogitsProcessor] = []
        if sampling.repetition_penalty != 1.0:
            processors.append(RepetitionPenaltyLogitsProcessor(sampling.repetition_penalty))
        if self._settings.no_repeat_ngram_size > 0:
            processors.append(NoRepeatNGramLogitsProcessor(self._settings.no_repeat_ngram_size))
        return LogitsProcessorList([_ReplyOnly(p, prompt_length) for p in processors])

    def stream(self, messages: list[ChatMessage], cancel: threading.Event, sampling: Sampling) -> ReplyStream:
        """Yield text pieces; generation stops at end-of-turn, at `max_new_tokens` (then the return value
        is True), or when the consumer closes this generator or sets `cancel` (checked before every new
        token)."""
        inputs = self._prompt_inputs(messages)
        input_ids = inputs["input_ids"]
        # a prompt with a view is prefilled whole, and its cache is not kept
        seeing = self._processor is not None and any(m.image is not None for m in messages)
        stop = threading.Event()
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        generation: dict[str, Any] = {
            **inputs,
            "attention_mask": torch.ones_like(input_ids),
            "streamer": streamer,
            "max_new_tokens": sampling.max_new_tokens,
            "logits_processor": self._anti_repetition(sampling, input_ids.shape[-1]),
            "stopping_criteria": StoppingCriteriaList([_StopWhenSet(stop), _StopWhenSet(cancel)]),
            "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            "return_dict_in_generate": True,
        }
        cache = None if seeing else self._reusable_cache(input_ids)
        if cache is not None:
            generation["past_key_values"] = cache
        if sampling.temperature > 0:
            generation.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            generation.update(do_sample=False)
        failure: list[BaseException] = []
        generated: list[int] = []

        def generate() -> None:
            try:
                if sampling.seed is not None:
                    torch.manual_seed(reply_seed(sampling.seed, input_ids.reshape(-1).tolist()))
                with torch.inference_mode():
                    out = self.model.generate(**generation)
                generated.append(out.sequences.shape[-1] - input_ids.shape[-1])
                kept = self._settings.reuse_persona_cache and not seeing
                if kept and isinstance(out.past_key_values, DynamicCache):
                    self._last = (out.sequences[0], out.past_key_values)
                elif seeing:
                    self._last = None
            except BaseException as exc:
                self._last = None
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
        return bool(generated) and generated[0] >= sampling.max_new_tokens


def _parts(message: ChatMessage) -> list[dict[str, Any]]:
    """A message as a vision-language processor takes it: its text, and its image decoded in memory."""
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    if message.image is not None:
        with Image.open(io.BytesIO(message.image)) as view:
            parts.append({"type": "image", "image": view.convert("RGB")})
    return parts


def _placed(model: Any, settings: ChatModelSettings, options: dict[str, Any]) -> Any:
    """The loaded model on its device (unless loading placed it), in inference mode."""
    if "device_map" not in options:
        model = model.to(settings.device)
    return model.eval()


def _use_cpu(chat: TransformersChatModel, settings: ChatModelSettings) -> None:
    """Thread count and int8 dynamic quantisation for running on the CPU."""
    if settings.cpu_threads:
        torch.set_num_threads(settings.cpu_threads)  # torch's pool is per process: it is set once, here
    if settings.quantize == "int8":
        with warnings.catch_warnings():
            # torch.ao's eager quantisation warns that it moves to torchao, which is not installed here
            warnings.simplefilter("ignore", DeprecationWarning)
            chat.model = torch.ao.quantization.quantize_dynamic(
                chat.model, {torch.nn.Linear}, dtype=torch.qint8
            )
        log.info("chat model: linear layers quantised to int8 (machine.chat_model.quantize)")


def _load_options(settings: ChatModelSettings, gguf_file: str | None) -> dict[str, Any]:
    """from_pretrained options for attention, 4-bit loading and device placement; a clear error when an
    option cannot work here."""
    options: dict[str, Any] = {}
    on_cuda = settings.device.startswith("cuda")
    if settings.attn_implementation is not None:
        if settings.attn_implementation == "flash_attention_2" and (
            not on_cuda or importlib.util.find_spec("flash_attn") is None
        ):
            raise ConfigError(
                "machine.chat_model.attn_implementation: flash_attention_2 needs a CUDA device and the "
                "flash-attn package (uv pip install flash-attn); use sdpa, or null for the default"
            )
        options["attn_implementation"] = settings.attn_implementation
    if settings.load_in_4bit:
        if not on_cuda:
            raise ConfigError(
                f"machine.chat_model.load_in_4bit: 4-bit loading needs a CUDA device (device is "
                f"{settings.device!r}); set device: cuda, or load_in_4bit: false"
            )
        if gguf_file is not None:
            raise ConfigError(
                "machine.chat_model.load_in_4bit: a GGUF file is already quantised; name a hub model id "
                "or folder with safetensors weights, or set load_in_4bit: false"
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(
                "machine.chat_model.load_in_4bit: the bitsandbytes package is not installed; "
                "uv pip install bitsandbytes (then run with uv run --no-sync), or set load_in_4bit: false"
            )
        from transformers import BitsAndBytesConfig

        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_type="nf4"
        )
        options["device_map"] = settings.device
    return options
