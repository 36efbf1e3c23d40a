"""The turn-end model: found offline in the installed pipecat-ai wheel, and it tells a finished question
from a sentence left hanging; a clear error when the file is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from mid_sentence_pause import with_pause

from machine import bundled_models
from machine.bundled_models import MissingModelPackageError
from machine.listen.smart_turn import SmartTurn
from machine.ports import SAMPLE_RATE

pytestmark = pytest.mark.models

PAUSE = np.zeros(SAMPLE_RATE // 5, dtype=np.float32)  # the 200 ms pause at which the model is asked


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn()


def test_the_model_file_is_found_in_the_installed_wheel() -> None:
    path = bundled_models.smart_turn_onnx()
    assert path.name == "smart-turn-v3.2-cpu.onnx" and path.stat().st_size > 8_000_000
    assert "pipecat" in path.parts


def test_a_missing_model_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundled_models, "package_dir", lambda package, distribution: tmp_path)
    with pytest.raises(MissingModelPackageError, match="pip install --no-deps pipecat-ai==") as error:
        SmartTurn()
    assert "turn_model: silence" in str(error.value)

    def not_installed(package: str, distribution: str) -> Path:
        raise MissingModelPackageError("not installed")

    monkeypatch.setattr(bundled_models, "package_dir", not_installed)
    with pytest.raises(MissingModelPackageError, match="pipecat-ai is not installed; run `make run`"):
        SmartTurn()


def test_a_finished_question_is_complete_and_a_hanging_phrase_is_not(
    smart_turn: SmartTurn, speak_16k: Callable[[str], np.ndarray]
) -> None:
    """Piper's voice is stochastic (a phrase sounds a little different each time it is synthesised), and
    one rendition of "Well, um," in a hundred or so sounds final to the model (0.65 once in CI, 0.01-0.05
    usually): each phrase is judged on the median of three renditions."""

    def verdict(speech: Callable[[], np.ndarray]) -> float:
        return float(np.median([smart_turn.probability(np.concatenate([speech(), PAUSE])) for _ in range(3)]))

    finished = [
        verdict(lambda text=text: speak_16k(text))  # type: ignore[misc]
        for text in ("What is your favourite colour?", "Can you tell me a joke?", "Do you like music?")
    ]

    def thinking() -> np.ndarray:
        audio, pause_at = with_pause(speak_16k, "I was thinking", "about getting a dog", pause_s=0.6)
        return audio[:pause_at]

    hanging = [verdict(thinking), verdict(lambda: speak_16k("Well, um,"))]
    assert min(finished) > 0.8, finished
    # Other phrases cut mid-sentence are a toss-up in Piper's voice (its comma sounds final to the model
    # about half the time, bench/cut_off.py): the runtime does not trust a verdict until the bot speaks
    assert max(hanging) < 0.5, hanging
    assert smart_turn.complete(np.concatenate([speak_16k("Do you like music?"), PAUSE]))


def test_long_speech_is_judged_on_its_last_eight_seconds(
    smart_turn: SmartTurn, speak_16k: Callable[[str], np.ndarray]
) -> None:
    question = np.concatenate([speak_16k("Do you like music?"), PAUSE])
    long = np.concatenate([np.full(20 * SAMPLE_RATE, 0.3, dtype=np.float32), question])
    assert smart_turn.probability(long) == pytest.approx(
        smart_turn.probability(np.concatenate([np.full(8 * SAMPLE_RATE, 0.3, dtype=np.float32), question])),
        abs=1e-5,
    )


def test_bad_audio_gets_a_clear_error(smart_turn: SmartTurn) -> None:
    with pytest.raises(ValueError, match="NaN or infinite"):
        smart_turn.probability(np.full(SAMPLE_RATE, np.nan, dtype=np.float32))


def test_the_makefile_installs_the_wheel_the_error_names() -> None:
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text(encoding="utf-8")
    assert f"PIPECAT := {bundled_models.SMART_TURN_DISTRIBUTION}\n" in makefile
