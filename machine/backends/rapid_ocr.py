"""Text in pictures with RapidOCR: PP-OCRv6 small detection and recognition on onnxruntime, the models
from inside the `rapidocr` wheel (nothing is downloaded)."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
from PIL import Image
from rapidocr import RapidOCR
from rapidocr.utils.output import RapidOCROutput

from machine.backends import bundled_models
from machine.ports import TextLine

log = logging.getLogger(__name__)


class RapidTextReader:
    """Reads the lines of text in an RGB picture; one caller at a time.

    A small picture (a changed region: a bubble that appeared) is enlarged up to `max_scale` times first,
    as long as it stays within `max_pixels` (RapidOCR itself is told not to resize): small text, as chat
    bubbles are in a 720p window, reads better larger, and the detector's cost grows with the pixels, so a
    whole frame is read as it is (see bench/vision.py)."""

    def __init__(
        self, threads: int = 1, min_score: float = 0.5, max_scale: float = 2.0, max_pixels: int = 1_000_000
    ) -> None:
        self._max_scale = max_scale
        self._max_pixels = max_pixels
        detection, recognition = bundled_models.ocr_models()
        self._ocr = RapidOCR(
            params={
                "Global.use_cls": False,  # chatbox and nameplate text is upright
                "Global.text_score": min_score,
                "Global.log_level": "error",
                "Det.model_path": str(detection),
                "Rec.model_path": str(recognition),
                "Det.limit_type": "max",  # never shrunk (up to 4096 a side), never enlarged: see `scale`
                "Det.limit_side_len": 4096,
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        log.info("text reader: %s, %s", detection.name, recognition.name)

    def read(self, pixels: npt.NDArray[np.uint8]) -> list[TextLine]:
        """The lines of text in `pixels` (RGB, height x width x 3), top to bottom."""
        if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
            raise ValueError(f"the text reader takes RGB uint8 pixels, not {pixels.dtype} {pixels.shape}")
        height, width = pixels.shape[:2]
        scale = max(1.0, min(self._max_scale, (self._max_pixels / max(1, width * height)) ** 0.5))
        if scale > 1.0:
            size = (round(width * scale), round(height * scale))
            pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BICUBIC))
        result = self._ocr(np.ascontiguousarray(pixels[:, :, ::-1]))  # RapidOCR reads OpenCV's BGR
        if not isinstance(result, RapidOCROutput) or result.boxes is None or result.txts is None:
            return []
        lines = []
        for box, text, score in zip(result.boxes, result.txts, result.scores or (), strict=True):
            xs, ys = np.asarray(box)[:, 0] / scale, np.asarray(box)[:, 1] / scale
            bounds = (
                max(0, int(xs.min())),
                max(0, int(ys.min())),
                min(width, int(np.ceil(xs.max()))),
                min(height, int(np.ceil(ys.max()))),
            )
            lines.append(TextLine(str(text).strip(), bounds, float(score)))
        return sorted((line for line in lines if line.text), key=lambda line: (line.box[1], line.box[0]))
