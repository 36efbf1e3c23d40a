"""A tiny vision-language model made on the spot, for testing the in-process path of a model that sees.

No vision-language model ships on PyPI, and the tests may not reach the hub, so this builds a LLaVA with
randomly initialised, tiny layers: a CLIP vision tower (32x32 images, 16-px patches) and a two-layer
Llama over the bundled SmolLM2's tokenizer with an `<image>` token added, saved with its processor and a
chat template as a hub folder would be. Its words are noise; what it shows is that a view reaches the
vision tower through the same loading, prompting and generating code a real one (SmolVLM, LLaVA) goes
through.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedTokenizerBase,
)

SIDE_PX = 32
TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def save_tiny_vlm(tokenizer: PreTrainedTokenizerBase, folder: Path) -> Path:
    """Save a tiny random LLaVA with `tokenizer` (copied, `<image>` added) and its processor in `folder`."""
    tokenizer.save_pretrained(folder / "tokenizer")
    tokenizer = type(tokenizer).from_pretrained(folder / "tokenizer")
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": SIDE_PX}, crop_size={"height": SIDE_PX, "width": SIDE_PX}
        ),
        tokenizer=tokenizer,
        patch_size=16,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=TEMPLATE,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=SIDE_PX,
            patch_size=16,
        ),
        text_config=LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
