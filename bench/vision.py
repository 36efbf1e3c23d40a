"""Vision benchmark: how well and how cheaply the bot reads chatbox bubbles and nameplates.

    .venv/bin/python bench/vision.py [--part reading|live|cpu|latency|all] [--output FILE]

Scenes drawn to look like VRChat's (tests/vision_scenes.py: nameplates in trust-rank colours, dark
translucent bubbles of several lengths, over busy backgrounds, with a sign that is neither):

- reading: each scene read whole by the real OCR (RapidOCR, PP-OCRv6 small) and laid out; per font size
  (the text's height in pixels), the character error rate of each bubble's text, the share read exactly,
  the share of bubbles found, and the share attributed to the right nameplate;
- live: the whole bot (bundled models, `python -m machine`'s composition root) watching a real window on
  Xvfb; a bubble appears, and the time from the window showing it to the message settling and to the bot's
  first audio is measured, message after message;
- cpu: the eyes alone at the default settings (2 frames a second, `max_core_share` 0.14) on a window whose
  bubble changes every 4 s and whose avatar moves every half second: the CPU of the eyes' two threads
  (capture and reader) as a share of one core, and the CPU of each frame read (over three minutes, so
  the budget's burst of 1 CPU s weighs little);
- latency: bench/turn_latency.py (10 questions, real time) without and with vision on, back to back, the
  window changing as above but with signs instead of bubbles (text to read, no typed turns): voice-to-voice
  latency with and without the eyes.

Writes bench/results/vision.json (with the machine's description).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from from_tests import load
from PIL import Image
from turn_latency import machine_description, write_result

from machine.app import GivenAudio, Parts, build_eyes, open_app
from machine.audio.recorded import WavReplySink
from machine.backends.rapid_ocr import RapidTextReader
from machine.settings import MachineSettings, VisionSettings, load_settings
from machine.turn_metrics import TurnRecord
from machine.vision.eyes import ReadText
from machine.vision.layout import Layout, lay_out
from memory_store import load_settings as load_memory_settings

REPO = Path(__file__).resolve().parents[1]
scenes = load("vision_scenes")
speech = load("speech")
xvfb = load("xvfb")
silent = load("silent_source")

SIZES = (12, 14, 16, 18, 20, 24, 28, 36)
TEXTS = (
    "hi",
    "Celeste, what is your favourite colour?",
    "lol same",
    "does anyone know where the mirror world is?",
    "I just got back from the club world and the music was so loud I could not hear myself think",
    "brb getting water",
    "Celeste do you like cats or dogs more",
    "my mic is broken so I am typing, sorry!",
)
NAMES = ("MiloTheFox", "Ana", "Kit-Kat", "Sunny Day", "xXShadowXx", "Juniper", "Pixel_Witch", "Bramble")
RANKS = tuple(scenes.TRUST_COLOURS)
BACKGROUNDS = ("blocks", "stripes", "gradient")


def character_error_rate(truth: str, read: str) -> float:
    """Character edits turning the truth into what was read, over the truth's length (spaces normalised)."""
    truth, read = " ".join(truth.split()), " ".join(read.split())
    return speech.word_edits(list(truth), list(read)) / max(1, len(truth))


def read_as(pixels: np.ndarray, reader: RapidTextReader, regions: list[tuple[int, int, int, int]]) -> Layout:
    """The layout after reading `regions` of `pixels`, as the eyes would (each grown by their margin)."""
    known = ReadText(reader)
    known.reread(pixels, regions)
    return lay_out(pixels, known.lines)


def reading() -> dict[str, object]:
    """Bubbles and names read by font size: whole scenes (a first frame, a turned camera), and each player
    as the region that changed when their bubble appeared (how a message is read live)."""
    reader = RapidTextReader()
    return {
        "whole_frame": {str(size): read_scenes(reader, size, whole=True) for size in SIZES},
        "changed_region": {str(size): read_scenes(reader, size, whole=False) for size in SIZES},
        "frame": "1280x720",
    }


def read_scenes(reader: RapidTextReader, size: int, whole: bool) -> dict[str, object]:
    """Twelve scenes of two players with bubbles in this font size, read whole or region by region."""
    errors, exact, found, named, bubbles, seconds = [], 0, 0, 0, 0, []
    for index in range(12):
        players = [
            scenes.Player(
                NAMES[(index * 2 + k) % len(NAMES)],
                TEXTS[(index * 2 + k) % len(TEXTS)],
                size,
                RANKS[(index + k) % len(RANKS)],
            )
            for k in range(2)
        ]
        image, drawn = scenes.scene(players, seed=index, kind=BACKGROUNDS[index % len(BACKGROUNDS)])
        pixels = np.asarray(image)
        started = time.process_time()
        regions = [(0, 0, pixels.shape[1], pixels.shape[0])]
        if not whole:  # a player's bubble and plate: what changes when the bubble appears
            regions = [
                (min(d.bubble[0], d.plate[0]), d.bubble[1], max(d.bubble[2], d.plate[2]), d.plate[3])
                for d in drawn
            ]
        layout = read_as(pixels, reader, regions)
        seconds.append((time.process_time() - started) / len(regions))
        for player in drawn:
            bubbles += 1
            left, top, right, bottom = player.bubble
            mine = [
                b
                for b in layout.bubbles
                if b.box[0] < right and left < b.box[2] and b.box[1] < bottom and top < b.box[3]
            ]
            text = " ".join(b.text for b in mine)
            errors.append(character_error_rate(player.player.says, text))
            exact += " ".join(text.split()) == " ".join(player.player.says.split())
            found += bool(mine)
            named += any(b.name == player.player.name for b in mine)
    row: dict[str, object] = {
        "bubbles": bubbles,
        "cer_mean": round(statistics.fmean(errors), 4),
        "cer_median": round(statistics.median(errors), 4),
        "exact": round(exact / bubbles, 3),
        "found": round(found / bubbles, 3),
        "attributed": round(named / bubbles, 3),
        "cpu_s_per_read": round(statistics.median(seconds), 3),
    }
    print(f"  {'whole frame' if whole else 'region':>11} {size:>3} px  {row}", flush=True)
    return row


def live(messages: int) -> dict[str, object]:
    """Messages typed one after another into a real window, answered by the whole bot."""
    settings = load_settings(REPO / "conf" / "default.yaml")
    settings = settings.model_copy(update={"vision": VisionSettings(enabled=True, window="VRChat")})
    memory_settings = load_memory_settings(REPO / "conf" / "default.yaml")
    players = [scenes.Player("MiloTheFox"), scenes.Player("Ana", rank="known user")]
    records: list[TurnRecord] = []
    shown: list[float] = []
    with tempfile.TemporaryDirectory() as scratch, xvfb.virtual_display() as display:
        folder = Path(scratch)
        os.environ["MEMORY_STORE_PATH"] = str(folder / "memory")
        picture = folder / "scene.png"
        scenes.scene(players, seed=5)[0].save(picture)
        window = xvfb.SceneWindow(picture, display)

        def type_messages() -> None:
            for index in range(messages):
                while len(records) < index:
                    time.sleep(0.05)
                time.sleep(1.0)
                says = TEXTS[(index + 1) % len(TEXTS)]
                who = [
                    scenes.Player(p.name, says if k == index % 2 else None, 22, p.rank)
                    for k, p in enumerate(players)
                ]
                shown.append(window.show(scenes.scene(who, seed=5)[0]))

        io = GivenAudio(
            silent.SilentUntilAnswered(records, messages, timeout_s=60.0 * messages),
            WavReplySink(folder / "replies", realtime=True),
        )
        with open_app(settings, memory_settings, io, records.append, fresh=True) as app:
            app.run(on_listening=lambda: threading.Thread(target=type_messages, daemon=True).start())
        window.close()
    rows: list[dict[str, object]] = []
    audio: list[float] = []
    for at, record in zip(shown, records, strict=False):
        if record.first_audio is not None:
            audio.append(record.first_audio - at)
        rows.append(
            {
                "speaker": record.speaker,
                "outcome": record.outcome,
                "read_s": round(record.last_voiced - at, 3),
                "settled_s": round(record.endpoint - at, 3),
                "first_audio_s": round(record.first_audio - at, 3) if record.first_audio else None,
            }
        )
        print(f"  {rows[-1]}", flush=True)
    return {
        "messages": rows,
        "first_audio_s_median": round(statistics.median(audio), 3) if audio else None,
        "settle_s": settings.vision.settle_s,
    }


def changing_window(window: object, stop: threading.Event, bubbles: bool = True) -> None:
    """Every 4 s a new chat bubble (or, without `bubbles`, a new sign and no players at all: text to read
    that is no message and no nameplate, so the prompt is the same as without eyes) and every half second
    an avatar (a block) that moves; the frames are drawn beforehand, so drawing them does not count."""
    players = [scenes.Player("MiloTheFox"), scenes.Player("Ana", rank="known user")]
    frames = []
    for step in range(64):
        says = TEXTS[(step // 8) % len(TEXTS)]
        speaking = [scenes.Player(players[0].name, says), players[1]] if bubbles else []
        image, _ = scenes.scene(speaking, seed=7)
        if not bubbles:
            scenes.draw_sign(image, says.upper()[:28], (700, 40))
        pixels = np.array(image)
        x = 40 + (step * 37) % 1100
        pixels[80:240, x : x + 90] = (200, 160, 120)  # someone walking past
        frames.append(Image.fromarray(pixels))
    step = 0
    while not stop.is_set():
        window.show(frames[step % len(frames)])  # type: ignore[attr-defined]
        step += 1
        stop.wait(0.5)


def eyes_cpu_s() -> float:
    """CPU seconds of the eyes' two threads (capture and reader), as the kernel counts them."""
    ids = {t.native_id for t in threading.enumerate() if t.name in ("vision-capture", "vision-reader")}
    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id in ids)


def cpu(seconds: float) -> dict[str, object]:
    """The eyes alone at the default settings on a changing window."""
    vision = VisionSettings(enabled=True, window="VRChat")
    with tempfile.TemporaryDirectory() as scratch, xvfb.virtual_display() as display:
        picture = Path(scratch) / "scene.png"
        scenes.scene([scenes.Player("MiloTheFox")], seed=7)[0].save(picture)
        window = xvfb.SceneWindow(picture, display)
        eyes = build_eyes(MachineSettings(vision=vision), Parts())
        stop = threading.Event()
        mover = threading.Thread(target=changing_window, args=(window, stop), daemon=True)
        got: list[object] = []
        mover.start()
        time.sleep(2)
        started = time.monotonic()
        eyes.start(got.append)
        time.sleep(seconds)
        spent = eyes_cpu_s()
        wall = time.monotonic() - started
        eyes.stop()
        stop.set()
        mover.join()
        window.close()
    result: dict[str, object] = {
        "seconds": round(wall, 1),
        "fps": vision.fps,
        "max_core_share": vision.max_core_share,
        "frames_read": eyes.frames_read,
        "cpu_s_per_frame_read": round(eyes.read_cpu_s / max(1, eyes.frames_read), 3),
        "eyes_core_share": round(spent / wall, 3),
        "reader_core_share": round(eyes.read_cpu_s / wall, 3),
        "messages": len(got),
    }
    print(f"  {result}", flush=True)
    return result


def latency(questions: int) -> dict[str, object]:
    """bench/turn_latency.py without, then with, the eyes watching a changing window (back to back): signs
    change and an avatar moves, so the eyes read, but no chat bubble makes a turn of its own and no
    nameplate changes the prompt (names in view do, and the replies with them: that is not the eyes' cost)."""
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as scratch, xvfb.virtual_display() as display:
        picture = Path(scratch) / "scene.png"
        scenes.scene([scenes.Player("MiloTheFox")], seed=7)[0].save(picture)
        window = xvfb.SceneWindow(picture, display)
        stop = threading.Event()
        mover = threading.Thread(target=changing_window, args=(window, stop, False), daemon=True)
        mover.start()
        for label, enabled in (("without", "false"), ("with", "true")):
            output = Path(scratch) / f"{label}.json"
            env = {**os.environ, "MACHINE_VISION__ENABLED": enabled, "MACHINE_VISION__WINDOW": "VRChat"}
            subprocess.run(
                [
                    sys.executable,
                    str(REPO / "bench" / "turn_latency.py"),
                    "--questions",
                    str(questions),
                    "--output",
                    str(output),
                ],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            stages = json.loads(output.read_text(encoding="utf-8"))["stages_s"]
            out[label] = {
                name: {"median": values["median"], "p95": values["p95"]} for name, values in stages.items()
            }
            medians = {name: values["median"] for name, values in stages.items()}
            print(
                f"  vision {label}: voice_to_voice {stages['voice_to_voice']}; medians {medians}", flush=True
            )
        stop.set()
        mover.join()
        window.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", choices=("reading", "live", "cpu", "latency", "all"), default="all")
    parser.add_argument("--messages", type=int, default=6)
    parser.add_argument("--cpu-seconds", type=float, default=180.0)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "vision.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    parts = ("reading", "live", "cpu", "latency") if args.part == "all" else (args.part,)
    result: dict[str, object] = {}
    if args.output.exists():
        result = json.loads(args.output.read_text(encoding="utf-8"))  # other parts from an earlier run stay
    result.update(
        {"benchmark": "vision", "date": time.strftime("%Y-%m-%d"), "machine": machine_description()}
    )
    for part in parts:
        print(f"\n{part}:", flush=True)
        if part == "reading":
            result["reading"] = reading()
        elif part == "live":
            result["live"] = live(args.messages)
        elif part == "cpu":
            result["cpu"] = cpu(args.cpu_seconds)
        else:
            result["latency"] = latency(args.questions)
    write_result(args.output, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
