"""A vision-language model in this process (`machine.chat_model.sees_images` with the transformers
backend): loaded with its processor from a folder, as from a hub id, and shown the bot's view with a
question about it. The model is tests/tiny_vlm.py's tiny random LLaVA (no such model ships on PyPI)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch
from chat_fakes import RecentWindow, make_thinker
from PIL import Image
from test_seen_names import Seeing
from tiny_vlm import save_tiny_vlm

from companion_settings import ConfigError
from machine.ports import ChatMessage, Sampling
from machine.settings import ChatModelSettings, load_settings

if TYPE_CHECKING:
    from machine.backends.transformers_chat import TransformersChatModel

pytestmark = pytest.mark.models

GREEDY = Sampling(temperature=0.0, top_p=1.0, repetition_penalty=1.0, max_new_tokens=4, seed=0)


def jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 36), colour).save(out, format="JPEG")
    return out.getvalue()


@pytest.fixture(scope="module")
def vlm_folder(tmp_path_factory: pytest.TempPathFactory, chat_model: TransformersChatModel) -> Path:
    return save_tiny_vlm(chat_model.tokenizer, tmp_path_factory.mktemp("tiny-vlm"))


@pytest.fixture(scope="module")
def seeing_model(vlm_folder: Path) -> Iterator[tuple[TransformersChatModel, list[torch.Tensor]]]:
    """The model loaded as `sees_images: true` loads it, and the pixels each call of its vision tower got."""
    from machine.backends.transformers_chat import TransformersChatModel

    model = TransformersChatModel(ChatModelSettings(model=str(vlm_folder), sees_images=True))
    seen: list[torch.Tensor] = []

    def record(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen.append((args[0] if args else kwargs["pixel_values"]).detach().clone())

    hook = model.model.vision_tower.register_forward_pre_hook(record, with_kwargs=True)
    yield model, seen
    hook.remove()


def channel_means(pixels: torch.Tensor) -> list[float]:
    return [float(v) for v in pixels.float().mean(dim=(0, 2, 3))]


def test_the_view_reaches_the_vision_tower_with_the_question(
    seeing_model: tuple[TransformersChatModel, list[torch.Tensor]],
) -> None:
    model, seen = seeing_model
    seen.clear()
    for colour, strongest in (((230, 20, 20), 0), ((20, 20, 230), 2)):
        asked = [ChatMessage("system", "Be brief."), ChatMessage("user", "What do you see?", jpeg(colour))]
        stream = model.stream(asked, threading.Event(), GREEDY)
        with pytest.raises(StopIteration):
            while True:
                assert isinstance(next(stream), str)
        means = channel_means(seen[-1])
        assert max(range(3), key=means.__getitem__) == strongest, (colour, means)
    assert len(seen) == 2, "one look per question: the prompt with the image is prefilled once"


def test_a_prompt_without_a_view_is_text_only(
    seeing_model: tuple[TransformersChatModel, list[torch.Tensor]],
) -> None:
    model, seen = seeing_model
    seen.clear()
    chat = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi there!")]
    list(model.stream(chat, threading.Event(), GREEDY))
    assert seen == [], "no image, no look"
    list(model.stream([*chat, ChatMessage("user", "And you?")], threading.Event(), GREEDY))
    assert model.reused_tokens > 5, "a text-only prompt reuses the kept cache"
    assert model.count_tokens(chat) == model.prompt_ids(chat).shape[-1] > 5


class GreenView(Seeing):
    """One player in view, and a green view to show."""

    def snapshot(self, max_side: int) -> bytes | None:
        self.sides.append(max_side)
        return jpeg((20, 220, 20))


def test_the_thinker_shows_a_model_that_sees_the_bots_view(
    vlm_folder: Path, seeing_model: tuple[TransformersChatModel, list[torch.Tensor]]
) -> None:
    model, seen = seeing_model
    seen.clear()
    sight = GreenView(["MiloTheFox"])
    chat = ChatModelSettings(model=str(vlm_folder), sees_images=True, image_side_px=320, max_new_tokens=4)
    thinker = make_thinker(model, RecentWindow(4), sight=sight, **chat.model_dump())
    list(thinker.sentences("Celeste, what do you see?", threading.Event()))
    assert sight.sides[0] == 320 and seen, "the view, downscaled, went to the model"
    assert max(range(3), key=channel_means(seen[0]).__getitem__) == 1, "it is the view (green)"


def test_the_bundled_text_model_cannot_be_made_to_see(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("machine:\n  chat_model:\n    sees_images: true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"sees_images needs a vision-language model: the bundled SmolLM2"):
        load_settings(config)
    config.write_text(
        "machine:\n  chat_model:\n    sees_images: true\n    model: HuggingFaceTB/SmolVLM-256M-Instruct\n",
        encoding="utf-8",
    )
    assert load_settings(config).chat_model.sees_images


def test_a_gguf_file_is_refused_for_a_model_that_sees() -> None:
    from machine.backends.transformers_chat import TransformersChatModel

    with pytest.raises(ConfigError, match=r"gguf_file: a GGUF file loads a text-only model here"):
        TransformersChatModel(
            ChatModelSettings(model="some/folder", gguf_file="model.Q4.gguf", sees_images=True)
        )
