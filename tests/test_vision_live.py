"""The eyes with real parts: scenes drawn to look like VRChat's are shown in a real X window (Xvfb), grabbed
by the real capture code (mss), read by the real OCR (RapidOCR, PP-OCRv6 small), and a mute player's
chatbox message is answered end to end, aloud and in the bot's own chatbox. A question about the view goes
to an OpenAI-compatible server with the frame as an image part (checked on arrival), and no frame is ever
written anywhere."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from silent_source import SilentUntilAnswered
from test_captions import Chatbox, chatbox  # noqa: F401 (chatbox: a fixture)
from test_openai_chat import Scripted, chat_settings, delta, scripted, sse  # noqa: F401 (scripted: a fixture)
from vision_scenes import Player, scene
from xvfb import SceneWindow, virtual_display

from machine.app import GivenAudio, Parts, build_eyes, open_app
from machine.audio.recorded import WavReplySink
from machine.backends.openai_chat import OpenAIChatModel
from machine.backends.rapid_ocr import RapidTextReader
from machine.ports import ChatboxMessage, MemoryContext
from machine.reply.checks import ReplyChecker
from machine.reply.thinking import Thinker
from machine.settings import (
    CaptionSettings,
    MachineSettings,
    ReplyCheckSettings,
    VisionSettings,
    load_settings,
)
from machine.turn_metrics import TurnRecord
from machine.vision.screen import Screen, ScreenError
from memory_store import MemoryStoreSettings

REPO = Path(__file__).resolve().parents[1]
ASKED = "Celeste, what is your favourite colour?"


@pytest.fixture(scope="module")
def reader() -> RapidTextReader:
    return RapidTextReader()


@pytest.fixture
def window(tmp_path: Path) -> Iterator[SceneWindow]:
    """A real window titled "VRChat" on a virtual display, showing two players and no bubble yet."""
    with virtual_display() as display:
        picture = tmp_path / "scene.png"
        scene([Player("MiloTheFox"), Player("Ana", rank="known user")], seed=2)[0].save(picture)
        shown = SceneWindow(picture, display)
        yield shown
        shown.close()


def watch(settings: VisionSettings, reader: RapidTextReader) -> tuple[object, list[ChatboxMessage]]:
    got: list[ChatboxMessage] = []
    eyes = build_eyes(MachineSettings(vision=settings), Parts(text_reader=reader))
    eyes.start(got.append)
    return eyes, got


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "never happened (a bound against a hang)"
        time.sleep(0.05)


@pytest.mark.models
def test_a_bubble_shown_in_the_vrchat_window_is_read_once_and_attributed(
    window: SceneWindow, reader: RapidTextReader
) -> None:
    eyes, got = watch(VisionSettings(enabled=True, window="VRChat", settle_s=0.5), reader)
    try:
        wait_until(lambda: sorted(eyes.present()) == ["Ana", "MiloTheFox"])  # type: ignore[attr-defined]
        assert got == []
        bubbles = [Player("MiloTheFox", ASKED), Player("Ana", "brb", text_px=18, rank="known user")]
        window.show(scene(bubbles, seed=2)[0])
        wait_until(lambda: len(got) == 2)
        time.sleep(1.5)  # the bubbles stay up: nothing more
        assert sorted((m.name, m.text) for m in got) == [("Ana", "brb"), ("MiloTheFox", ASKED)]
        assert all(m.seen_at < m.settled_at for m in got)
    finally:
        eyes.stop()  # type: ignore[attr-defined]


@pytest.mark.e2e
def test_a_mute_players_message_is_answered_aloud_and_in_the_bots_chatbox(
    window: SceneWindow,
    settings: MachineSettings,
    memory_settings: MemoryStoreSettings,
    tmp_path: Path,
    chatbox: Chatbox,  # noqa: F811
) -> None:
    own = settings.model_copy(
        update={
            "vision": VisionSettings(enabled=True, window="VRChat", settle_s=0.5),
            "captions": CaptionSettings(enabled=True, port=chatbox.port, min_interval_s=1.0),
        }
    )
    records: list[TurnRecord] = []
    replies = tmp_path / "replies"
    io_ = GivenAudio(SilentUntilAnswered(records), WavReplySink(replies, realtime=False))

    def typed_once_listening() -> None:
        threading.Thread(target=window.show, args=(scene([Player("MiloTheFox", ASKED)], seed=2)[0],)).start()

    with open_app(own, memory_settings, io_, records.append, fresh=True) as app:
        app.run(on_listening=typed_once_listening)
    (record,) = records
    assert (record.typed, record.speaker, record.transcript) == (True, "MiloTheFox", ASKED)
    assert record.outcome == "replied" and record.reply, record
    assert sorted(replies.glob("reply-*.wav")), "the reply was spoken"
    # the run ends with the turn, and closing the captions drops pages not yet shown: the first one is there
    chatbox.wait_for(lambda: any(text.startswith(record.reply[0]) for text in chatbox.texts()))


@pytest.mark.models
def test_a_question_about_the_view_sends_the_frame_to_a_model_that_sees(
    window: SceneWindow,
    reader: RapidTextReader,
    scripted: Callable[..., Scripted],  # noqa: F811
) -> None:
    server = scripted(body=sse(delta("A purple striped room and two friends.", "stop")))
    image, _ = scene([Player("MiloTheFox"), Player("Ana", rank="known user")], seed=2)
    eyes, _ = watch(VisionSettings(enabled=True, window="VRChat"), reader)
    try:
        wait_until(lambda: eyes.latest() is not None)  # type: ignore[attr-defined]
        chat = chat_settings(server.url).model_copy(update={"sees_images": True, "image_side_px": 320})
        checks = ReplyCheckSettings()
        thinker = Thinker(
            OpenAIChatModel(chat),
            _NoMemory(),
            "You are Celeste.",
            "Celeste",
            chat,
            checks,
            ReplyChecker(checks, "You are Celeste."),
            sight=eyes,  # type: ignore[arg-type]
        )
        said = " ".join(thinker.sentences("Celeste, what do you see?", threading.Event()))
    finally:
        eyes.stop()  # type: ignore[attr-defined]
    assert said == "A purple striped room and two friends."
    *_, asked = server.requests[0]["messages"]
    text, picture = asked["content"]
    assert text == {"type": "text", "text": "Celeste, what do you see?"}
    assert picture["image_url"]["url"].startswith("data:image/jpeg;base64,")
    sent = Image.open(io.BytesIO(base64.b64decode(picture["image_url"]["url"].split(",", 1)[1])))
    assert sent.format == "JPEG" and sent.size == (320, 180), "the window, downscaled to 320 a side"
    expected = np.asarray(image.resize(sent.size), dtype=np.float32)
    assert np.abs(np.asarray(sent.convert("RGB"), dtype=np.float32) - expected).mean() < 25, "it is the view"


class _NoMemory:
    def context(self, user_input: str, speaker: str | None = None) -> MemoryContext:
        return MemoryContext((), ())

    def remember(self, question: str, answer: str, speaker: str | None = None) -> None:
        return None

    def touch(self) -> None:
        return None


PROBE = """
import sys, time
written = []
def audit(event, args):
    if event == "open" and len(args) > 1 and isinstance(args[1], str) and any(c in args[1] for c in "wax+"):
        written.append(str(args[0]))
    elif event in ("os.rename", "os.replace", "shutil.copyfile", "os.link", "os.symlink"):
        written.append(str(args[0]))
from machine.app import Parts, build_eyes
from machine.settings import MachineSettings, VisionSettings
vision = VisionSettings(enabled=True, window="VRChat", settle_s=0.2)
eyes = build_eyes(MachineSettings(vision=vision), Parts())
sys.addaudithook(audit)
got = []
eyes.start(got.append)
deadline = time.monotonic() + 60
while not got and time.monotonic() < deadline:
    time.sleep(0.1)
picture = eyes.snapshot(256)
eyes.stop()
print("MESSAGES", [m.text for m in got])
print("SNAPSHOT", len(picture or b""))
print("WRITTEN", written)
"""


@pytest.mark.models
def test_no_frame_is_ever_written_to_disk_or_to_the_log(window: SceneWindow, tmp_path: Path) -> None:
    window.show(scene([Player("MiloTheFox", "hello there")], seed=2)[0])
    folder = tmp_path / "probe"
    folder.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(REPO), "MACHINE_LOG_LEVEL": "DEBUG"},
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines() if line.split(" ", 1)[0].isupper())
    assert json.loads(lines["MESSAGES"].replace("'", '"')) == ["hello there"], run.stderr[-2000:]
    assert int(lines["SNAPSHOT"]) > 1000, "a frame was in memory"
    assert lines["WRITTEN"] == "[]", "nothing was opened for writing, renamed or copied"
    assert list(folder.iterdir()) == [], "nothing appeared in the working folder"
    assert len(run.stderr) < 5000 and "pixels" not in run.stderr


def test_a_window_or_monitor_that_is_not_there_is_a_clear_error(window: SceneWindow) -> None:
    with pytest.raises(ScreenError, match=r"machine.vision.window: no window's title contains 'NoSuchGame'"):
        build_eyes(MachineSettings(vision=VisionSettings(enabled=True, window="NoSuchGame")), Parts())
    with pytest.raises(
        ScreenError, match=r"machine.vision.monitor: there is no monitor 3 \(this display has 1"
    ):
        build_eyes(MachineSettings(vision=VisionSettings(enabled=True, monitor=3)), Parts())


def test_no_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(ScreenError, match="the screen cannot be read"):
        Screen(VisionSettings(enabled=True))


def test_vision_is_off_by_default_and_on_from_the_environment_it_watches_the_primary_screen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings(REPO / "conf" / "default.yaml").vision.enabled is False
    monkeypatch.setenv("MACHINE_VISION__ENABLED", "true")
    vision = load_settings(REPO / "conf" / "default.yaml").vision
    assert (vision.enabled, vision.monitor, vision.window, vision.region) == (True, 1, None, None)
    with pytest.raises(ValueError, match="name one of window, region and camera"):
        VisionSettings(window="VRChat", region=(0, 0, 640, 480))


@pytest.mark.models
def test_a_camera_or_video_is_watched_as_the_screen_is(tmp_path: Path, reader: RapidTextReader) -> None:
    """`machine.vision.camera` names a device, a video file or a stream: here a real video file, read by the
    real OpenCV capture (a camera device is the same call with its number)."""
    import cv2

    video = tmp_path / "view.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 2.0, (1280, 720))
    calm = np.asarray(scene([Player("MiloTheFox")], seed=2)[0])
    typed = np.asarray(scene([Player("MiloTheFox", "can you hear me?")], seed=2)[0])
    for frame in [calm] * 2 + [typed] * 40:
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    eyes, got = watch(VisionSettings(enabled=True, camera=str(video), settle_s=0.5), reader)
    try:
        wait_until(lambda: len(got) == 1)
    finally:
        eyes.stop()  # type: ignore[attr-defined]
    assert (got[0].name, got[0].text) == ("MiloTheFox", "can you hear me?")
    with pytest.raises(ScreenError, match=r"machine\.vision\.camera: '/nowhere\.avi' cannot be opened"):
        build_eyes(MachineSettings(vision=VisionSettings(enabled=True, camera="/nowhere.avi")), Parts())
