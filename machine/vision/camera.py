"""Frames from a camera instead of the screen, with OpenCV: a device by number (DirectShow or Media
Foundation on Windows, V4L2 on Linux, AVFoundation on macOS; a virtual camera such as OBS's counts), or a
video file or stream URL. The capture thread reads it as it grabs the screen; a file that ends starts
again."""

from __future__ import annotations

import time

import cv2
import numpy as np

from machine.ports import Frame
from machine.vision.screen import ScreenError

__all__ = ["Camera"]


class Camera:
    """An open camera (or file, or stream). Use from one thread."""

    def __init__(self, source: int | str) -> None:
        self._source = source
        self._capture = cv2.VideoCapture(source)
        if not self._capture.isOpened():
            self._capture.release()
            raise ScreenError(
                f"machine.vision.camera: {source!r} cannot be opened; name a camera by number (0: the "
                "first), a video file or a stream URL, or set machine.vision.camera: null for the screen"
            )
        self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not one queued seconds ago

    def grab(self) -> Frame:
        """The camera's next frame, as RGB pixels in memory."""
        ok, bgr = self._capture.read()
        if not ok or bgr is None:
            raise OSError(f"the camera {self._source!r} gave no frame (unplugged, or the file ended)")
        return Frame(np.ascontiguousarray(bgr[:, :, ::-1]), time.monotonic())

    def close(self) -> None:
        """Release the device."""
        self._capture.release()
