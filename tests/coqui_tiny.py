"""A tiny Coqui VITS model with random weights, built from a config, for the Coqui backend to load offline.

Its audio is noise: it exercises the real loading and synthesis path (text → characters → VITS → waveform),
not the voice. Plain characters (no phonemes), so no espeak is needed. Used by
tests/test_coqui_synthesizer.py and bench/speech_synthesis.py.
"""

from __future__ import annotations

from pathlib import Path

import torch
from TTS.config.shared_configs import BaseAudioConfig
from TTS.tts.configs.shared_configs import CharactersConfig
from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
from TTS.tts.models.vits import Vits

HOP_LENGTH = 256
"""Audio samples per decoder frame (the product of the decoder's upsample rates)."""


def build_tiny_vits(
    folder: Path, sample_rate: int = 16_000, speakers: tuple[str, ...] = (), seed: int = 0
) -> tuple[Path, Path]:
    """Write `model.pth` and `config.json` of a ~0.25 M-parameter VITS into `folder`; returns both paths.

    With `speakers`, the model is multi-speaker and needs one of those names to speak."""
    args = VitsArgs(
        hidden_channels=16,
        hidden_channels_ffn_text_encoder=32,
        num_layers_text_encoder=1,
        num_layers_posterior_encoder=1,
        num_layers_flow=1,
        kernel_size_flow=3,
        out_channels=HOP_LENGTH + 1,
        resblock_kernel_sizes_decoder=[3],
        resblock_dilation_sizes_decoder=[[1, 3, 5]],
        upsample_rates_decoder=[8, 8, 4],
        upsample_kernel_sizes_decoder=[16, 16, 8],
        upsample_initial_channel_decoder=16,
        init_discriminator=False,
        use_sdp=False,  # a deterministic duration predictor: the length follows the text
        use_speaker_embedding=bool(speakers),
        speaker_embedding_channels=8,
    )
    config = VitsConfig(
        model_args=args,
        audio=BaseAudioConfig(
            sample_rate=sample_rate,
            hop_length=HOP_LENGTH,
            win_length=2 * HOP_LENGTH,
            fft_size=2 * HOP_LENGTH,
            num_mels=20,
            do_trim_silence=False,
        ),
        use_phonemes=False,
        phoneme_language="en",  # the text's language (Coqui reads it even without phonemes)
        text_cleaner="basic_cleaners",
        characters=CharactersConfig(
            characters="abcdefghijklmnopqrstuvwxyz", punctuations="!'(),-.:;? ", pad="<PAD>", blank="<BLNK>"
        ),
        use_speaker_embedding=bool(speakers),
        speakers=list(speakers),
    )
    torch.manual_seed(seed)
    model = Vits(config)
    folder.mkdir(parents=True, exist_ok=True)
    model_path, config_path = folder / "model.pth", folder / "config.json"
    torch.save({"model": model.state_dict()}, model_path)
    config.save_json(str(config_path))
    return model_path, config_path
