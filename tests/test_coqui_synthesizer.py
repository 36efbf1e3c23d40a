"""The Coqui backend on a tiny random-weight VITS built here: coqui-tts's real loading and synthesis path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from coqui_tiny import HOP_LENGTH, build_tiny_vits

from machine.backends.coqui_synthesizer import CoquiSynthesizer
from machine.settings import CoquiSettings, SynthesizerSettings, load_settings

pytestmark = pytest.mark.models

RATE = 16_000  # not Coqui's default (22050), so the rate must come from the model's config


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_tiny_vits(tmp_path_factory.mktemp("tiny-vits"), sample_rate=RATE)


@pytest.fixture(scope="module")
def coqui(tiny_model: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> CoquiSynthesizer:
    """Loaded from a configuration file that picks the Coqui backend and the local model."""
    model_path, config_path = tiny_model
    folder = tmp_path_factory.mktemp("config")
    (folder / "persona.md").write_text("You are {bot_name}.", encoding="utf-8")
    coqui_section = {"model_path": str(model_path), "config_path": str(config_path)}
    machine = {"synthesizer": {"backend": "coqui", "coqui": coqui_section}}
    (folder / "config.yaml").write_text(yaml.safe_dump({"machine": machine}), encoding="utf-8")
    settings = load_settings(folder / "config.yaml")
    assert settings.synthesizer.backend == "coqui"
    return CoquiSynthesizer(settings.synthesizer.coqui)


def test_speaks_each_sentence_as_float32_at_the_models_rate(coqui: CoquiSynthesizer) -> None:
    short, long = "Hi there.", "How are you doing on this fine and quiet evening, my dear friend?"
    chunks = list(coqui.synthesize(f"{short} {long}"))
    assert coqui.sample_rate == RATE
    assert len(chunks) == 2, "one chunk per sentence"
    for chunk, sentence in zip(chunks, (short, long), strict=True):
        samples = chunk.samples
        assert chunk.sample_rate == RATE
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert np.all(np.isfinite(samples)) and np.abs(samples).max() <= 1.0
        assert np.any(samples[-1000:] != 0), "Coqui's trailing pause is cut off"
        assert len(samples) % HOP_LENGTH == 0, "whole decoder frames, nothing of the pad left"
        # every character (and the blank between characters) lasts at least one decoder frame
        assert len(samples) >= HOP_LENGTH * len(sentence)
    assert len(chunks[1].samples) > 2 * len(chunks[0].samples), "a longer sentence lasts longer"


def test_wiring_picks_the_backend_by_setting(tiny_model: tuple[Path, Path]) -> None:
    from machine.app import build_synthesizer
    from machine.backends.piper_synthesizer import PiperSynthesizer

    model_path, config_path = tiny_model
    chosen = SynthesizerSettings(
        backend="coqui", coqui=CoquiSettings(model_path=model_path, config_path=config_path)
    )
    assert isinstance(build_synthesizer(chosen), CoquiSynthesizer)
    assert isinstance(build_synthesizer(SynthesizerSettings()), PiperSynthesizer)


def test_a_multi_speaker_model_needs_one_of_its_speakers(tmp_path: Path) -> None:
    model_path, config_path = build_tiny_vits(tmp_path, speakers=("ana", "bob"))
    local = CoquiSettings(model_path=model_path, config_path=config_path)
    with pytest.raises(ValueError, match=r"coqui\.speaker: this model needs one; set one of: ana, bob$"):
        CoquiSynthesizer(local)
    with pytest.raises(ValueError, match=r"coqui\.speaker: 'eve' is not one of this model's; set one of"):
        CoquiSynthesizer(local.model_copy(update={"speaker": "eve"}))
    with pytest.raises(ValueError, match=r"machine\.synthesizer\.coqui\.language: .*set it to null"):
        CoquiSynthesizer(local.model_copy(update={"speaker": "bob", "language": "en"}))
    bob = CoquiSynthesizer(local.model_copy(update={"speaker": "bob"}))
    assert len(next(bob.synthesize("Hello.")).samples) > 0


@pytest.mark.parametrize("missing", ["model_path", "config_path"])
def test_missing_model_files_are_reported(
    tiny_model: tuple[Path, Path], tmp_path: Path, missing: str
) -> None:
    model_path, config_path = tiny_model
    local = CoquiSettings(model_path=model_path, config_path=config_path)
    with pytest.raises(
        FileNotFoundError, match=rf"machine\.synthesizer\.coqui\.{missing}: .*nowhere does not exist"
    ):
        CoquiSynthesizer(local.model_copy(update={missing: tmp_path / "nowhere"}))


def test_unknown_model_name_is_reported() -> None:
    with pytest.raises(
        RuntimeError, match=r"machine\.synthesizer\.coqui\.model: cannot load tts_models/en/no/such"
    ):
        CoquiSynthesizer(CoquiSettings(model="tts_models/en/no/such"))
