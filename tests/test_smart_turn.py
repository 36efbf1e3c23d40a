"""The turn-end model: what it is given (the last 8 s, padded at the front, as Whisper features), how its
probability becomes a verdict, and, with the real model found offline in the installed pipecat-ai wheel,
that it tells a finished question from a phrase left hanging; a clear error when the file is missing.

The verdict's wiring is tested with a fake ONNX session. The real model is only asked about phrases whose
score is far from any threshold (spoken by Piper without its random variation, so one rendition is always
the same audio): how well it judges sentences cut at a pause is a toss-up for some phrases and is left to
the benchmark (bench/cut_off.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from machine.audio.files import to_mono_16k
from machine.backends import bundled_models
from machine.backends import smart_turn as smart_turn_module
from machine.backends.bundled_models import MissingModelPackageError
from machine.backends.smart_turn import SmartTurn
from machine.backends.whisper_features import log_mel
from machine.ports import SAMPLE_RATE
from machine.settings import MachineSettings

EIGHT_S = 8 * SAMPLE_RATE
PAUSE = np.zeros(SAMPLE_RATE // 5, dtype=np.float32)  # the 200 ms pause at which the model is asked


class FakeSession:
    """Stands in for onnxruntime.InferenceSession: records the inputs, answers `probability`."""

    probability = 0.5

    def __init__(self, path: str, sess_options: Any = None, providers: Any = None) -> None:
        self.path, self.options, self.providers = path, sess_options, providers
        self.inputs: list[dict[str, np.ndarray]] = []

    def run(self, outputs: None, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.inputs.append(inputs)
        return [np.array([[self.probability]], dtype=np.float32)]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., tuple[SmartTurn, FakeSession]]:
    monkeypatch.setattr(smart_turn_module.onnxruntime, "InferenceSession", FakeSession)

    def make(probability: float = 0.5, **kwargs: Any) -> tuple[SmartTurn, FakeSession]:
        model = SmartTurn(model=tmp_path / "turn.onnx", **kwargs)
        session = model._session
        assert isinstance(session, FakeSession)
        session.probability = probability
        return model, session

    return make


def noise(seconds: float, level: float = 0.1, seed: int = 0) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * SAMPLE_RATE))).astype(
        np.float32
    )


def test_the_probability_is_the_model_s_output(fake: Callable[..., Any]) -> None:
    """The model's output is handed on as it is (the endpointer grades it: test_endpointing.py)."""
    audio = noise(1)
    model, session = fake(0.5)
    assert model.probability(audio) == 0.5
    session.probability = 0.95
    assert model.probability(audio) == pytest.approx(0.95)


def test_the_model_is_given_whisper_features_of_eight_seconds(fake: Callable[..., Any]) -> None:
    model, session = fake(threads=3)
    model.probability(noise(8))
    ((name, features),) = session.inputs[0].items()
    assert name == "input_features" and features.shape == (1, 80, 800) and features.dtype == np.float32
    np.testing.assert_array_equal(features[0], log_mel(noise(8)))
    assert session.options.intra_op_num_threads == 3 and session.providers == ["CPUExecutionProvider"]


def test_long_speech_is_judged_on_its_last_eight_seconds(fake: Callable[..., Any]) -> None:
    model, session = fake()
    last = noise(8, seed=1)
    model.probability(np.concatenate([noise(20, level=0.9, seed=2), last]))
    model.probability(last)
    np.testing.assert_array_equal(session.inputs[0]["input_features"], session.inputs[1]["input_features"])


def test_short_speech_is_padded_with_silence_at_the_front(fake: Callable[..., Any]) -> None:
    model, session = fake()
    clip = noise(1.5)
    model.probability(clip)
    (features,) = session.inputs[0]["input_features"]
    np.testing.assert_array_equal(features, log_mel(np.pad(clip, (EIGHT_S - len(clip), 0))))
    # the speech is in the last frames, the first ones are all alike (silence)
    assert features[:, -140:].mean() > features[:, :600].mean() + 0.5
    np.testing.assert_array_equal(features[:, :600], np.repeat(features[:, :1], 600, axis=1))


def test_silence_and_empty_audio_are_judged_as_silence(fake: Callable[..., Any]) -> None:
    """The endpointer warms the model up on a second of silence: its features must be finite."""
    model, session = fake()
    model.probability(np.zeros(SAMPLE_RATE, dtype=np.float32))
    model.probability(np.zeros(0, dtype=np.float32))
    for inputs in session.inputs:
        assert np.all(inputs["input_features"] == np.float32(-1.5))  # the floor, log10(1e-10), scaled


def test_bad_audio_gets_a_clear_error(fake: Callable[..., Any]) -> None:
    model, session = fake()
    for bad in (np.nan, np.inf):
        audio = noise(1)
        audio[100] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            model.probability(audio)
    assert session.inputs == []


# the real model


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn()


@pytest.fixture(scope="module")
def speak_steadily(settings: MachineSettings) -> Callable[[str], np.ndarray]:
    """Text → 16 kHz speech by the bundled Piper voice without its random variation (noise scales 0): the
    same text is always the same audio."""
    from machine.backends.piper_synthesizer import PiperSynthesizer

    voice = PiperSynthesizer(
        settings.synthesizer.model_copy(update={"noise_scale": 0.0, "noise_w_scale": 0.0})
    )

    def speak(text: str) -> np.ndarray:
        audio = np.concatenate([chunk.samples for chunk in voice.synthesize(text)])
        return to_mono_16k(audio, voice.sample_rate)

    return speak


@pytest.mark.models
def test_the_model_file_is_found_in_the_installed_wheel() -> None:
    path = bundled_models.smart_turn_onnx()
    assert path.name == "smart-turn-v3.2-cpu.onnx" and path.stat().st_size > 8_000_000
    assert "pipecat" in path.parts


@pytest.mark.models
def test_a_missing_model_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundled_models, "package_dir", lambda package, distribution: tmp_path)
    with pytest.raises(
        MissingModelPackageError, match=re.escape("`uv sync` (both install pipecat-ai==1.14.0 from uv.lock)")
    ) as error:
        SmartTurn()
    assert "turn_model: silence" in str(error.value)

    def not_installed(package: str, distribution: str) -> Path:
        raise MissingModelPackageError("not installed")

    monkeypatch.setattr(bundled_models, "package_dir", not_installed)
    with pytest.raises(MissingModelPackageError, match="pipecat-ai is not installed; run `make run`"):
        SmartTurn()


@pytest.mark.models
def test_a_finished_question_is_complete_and_a_hanging_phrase_is_not(
    smart_turn: SmartTurn, speak_steadily: Callable[[str], np.ndarray]
) -> None:
    """Only phrases the model is sure about. Measured (Smart Turn v3.2, onnxruntime 1.32, piper-tts 1.8,
    200 ms pause), steady voice / Piper's default voice over 40 renditions (min-max):
    "What is your favourite colour?" 0.989 / 0.988-0.990, "Can you tell me a joke?" 0.984 / 0.976-0.989,
    "Well, um" 0.008 / 0.006-0.015, "I was going to say that the" 0.023 / 0.009-0.136. Left out as
    toss-ups (default voice, 12 renditions): "Thank you very much." 0.35-0.97, "I was thinking" cut at its
    pause 0.03-0.27 (yet 0.90 as the median of three on a fresh clone), "I really want to" cut 0.10-0.90."""
    finished = [
        smart_turn.probability(np.concatenate([speak_steadily(text), PAUSE]))
        for text in ("What is your favourite colour?", "Can you tell me a joke?")
    ]
    hanging = [
        smart_turn.probability(np.concatenate([speak_steadily(text), PAUSE]))
        for text in ("Well, um", "I was going to say that the")
    ]
    assert min(finished) > 0.9, finished
    assert max(hanging) < 0.1, hanging


@pytest.mark.models
def test_the_warm_up_on_silence_gives_a_probability(smart_turn: SmartTurn) -> None:
    assert 0.0 <= smart_turn.probability(np.zeros(SAMPLE_RATE, dtype=np.float32)) <= 1.0


def test_the_project_installs_the_wheel_the_error_names() -> None:
    """pyproject.toml pins the wheel (uv.lock locks it; tests/test_lock.py checks the lock against this)."""
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"{bundled_models.SMART_TURN_DISTRIBUTION}",' in pyproject
