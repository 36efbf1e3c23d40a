"""Text to speech with Coqui TTS (coqui-tts): a named model, or a local checkpoint with its config."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
from TTS.api import TTS
from TTS.utils.synthesizer import PAD_SILENCE_SAMPLES

from machine.ports import SpeechAudio
from machine.settings import CoquiSettings

log = logging.getLogger(__name__)

_KEY = "machine.synthesizer.coqui"


class CoquiSynthesizer:
    """Yields one chunk of audio per sentence (split by Coqui's own segmenter), at the model's rate."""

    def __init__(self, settings: CoquiSettings) -> None:
        for key, path in (("model_path", settings.model_path), ("config_path", settings.config_path)):
            if path is not None and not path.exists():
                raise FileNotFoundError(
                    f"{_KEY}.{key}: {path} does not exist; point model_path at a Coqui checkpoint (or model "
                    "folder) and config_path at its config.json"
                )
        self._tts = _load(settings)
        self._tts.to(settings.device)
        self._speaker = settings.speaker
        self._language = settings.language
        _check_choice("speaker", settings.speaker, self._tts.speakers)
        _check_choice("language", settings.language, self._tts.languages)

    @property
    def sample_rate(self) -> int:
        """The model's output rate (from its config, or its vocoder's)."""
        return int(self._tts.synthesizer.output_sample_rate)

    def rest(self) -> None:
        """Nothing to give back: torch's CPU tensors go back to malloc when freed, and the process trims
        malloc's free memory after each turn."""

    def synthesize(self, text: str) -> Iterator[SpeechAudio]:
        """Audio for `text`, one chunk per sentence, without the pause Coqui pads each sentence with."""
        for sentence in self._tts.synthesizer.split_into_sentences(text, self._language):
            wav = self._tts.tts(
                sentence, speaker=self._speaker, language=self._language, split_sentences=False
            )
            samples = np.asarray(wav[:-PAD_SILENCE_SAMPLES], dtype=np.float32)
            yield SpeechAudio(samples=np.clip(samples, -1.0, 1.0), sample_rate=self.sample_rate)


def _load(settings: CoquiSettings) -> TTS:
    """The model by name (downloaded and cached by coqui-tts) or from the local files."""
    if settings.model is not None:
        key, source = "model", settings.model
    else:
        key, source = "model_path", str(settings.model_path)
    log.info("loading Coqui TTS model %s", source)
    try:
        if settings.model is not None:
            return TTS(settings.model, progress_bar=False)
        return TTS(model_path=source, config_path=str(settings.config_path), progress_bar=False)
    except Exception as exc:
        raise RuntimeError(
            f"{_KEY}.{key}: cannot load {source} ({type(exc).__name__}: {exc}); name a model listed by "
            "`tts --list_models` (its download needs internet) or a local checkpoint with its config"
        ) from exc


def _check_choice(key: str, chosen: str | None, offered: list[str] | None) -> None:
    """A speaker or language must be set exactly when the model offers several, and be one of them."""
    if not offered:
        if chosen is not None:
            raise ValueError(f"{_KEY}.{key}: this model offers no {key} to choose; set it to null")
        return
    if chosen not in offered:
        shown = ", ".join(offered[:20]) + (", ..." if len(offered) > 20 else "")
        problem = "this model needs one" if chosen is None else f"{chosen!r} is not one of this model's"
        raise ValueError(f"{_KEY}.{key}: {problem}; set one of: {shown}")
