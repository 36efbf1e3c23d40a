"""The spoken demo that `make run` plays: a short conversation on the bundled models.

The user's questions are spoken by Piper into `out/demo/questions/` (a little slower than the bot, so the
two are easy to tell apart), then the runtime converses over them in real time and writes its replies to
`out/demo/replies/`. At the end the transcript and a per-stage latency table are printed. The demo remembers
in a block of its own (`demo_block`, e.g. `celeste-demo`), forgotten before it starts, so it never mixes
with the bot's real conversations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from machine.app import Parts, build_synthesizer
from machine.audio.files import write_wav
from machine.runs.recorded import run_recorded
from machine.settings import MachineSettings
from machine.turn_metrics import STAGES, TurnRecord, latency_table
from memory_store import MemoryStoreSettings

QUESTIONS = (
    "Hi {bot_name}, how are you today?",
    "What do you like to do in VR Chat?",
    "Can you tell me something fun about the moon?",
    "Thanks, it was nice talking to you!",
)


DEMO_SUFFIX = "-demo"
BLOCK_NAME_CHARS = 63


def demo_block(memory_block: str) -> str:
    """The memory block the demo uses: the bot's block name with `-demo` (cut to fit a block name)."""
    return memory_block[: BLOCK_NAME_CHARS - len(DEMO_SUFFIX)] + DEMO_SUFFIX


def synthesise_questions(
    settings: MachineSettings, folder: Path, questions: tuple[str, ...] = QUESTIONS
) -> list[Path]:
    """Speak the questions into WAV files (rewritten each time: it takes well under a second each), a
    little slower than the bot's own voice."""
    voice = build_synthesizer(settings.synthesizer.model_copy(update={"length_scale": 1.15}))
    paths = []
    for index, question in enumerate(questions, start=1):
        audio = np.concatenate(
            [chunk.samples for chunk in voice.synthesize(question.format(bot_name=settings.bot_name))]
        )
        path = folder / f"q{index:02d}.wav"
        write_wav(path, audio, voice.sample_rate)
        paths.append(path)
    return paths


def per_turn_table(records: list[TurnRecord]) -> str:
    """One row per turn with every stage in milliseconds."""
    names = [name for name, _, _ in STAGES]
    rows = ["turn " + "".join(f"{name:>16}" for name in names)]
    for record in records:
        stages = record.stages()
        cells = "".join(f"{stages[name] * 1000:>16.0f}" if name in stages else f"{'-':>16}" for name in names)
        rows.append(f"{record.turn:<5}{cells}")
    return "\n".join(rows)


def run_demo(
    settings: MachineSettings,
    memory_settings: MemoryStoreSettings,
    output: Path,
    realtime: bool = True,
    parts: Parts | None = None,
) -> list[TurnRecord]:
    """Synthesise the questions, converse over them, and print the transcript and latency tables.

    The conversation starts fresh in the demo's own memory block (`demo_block`), never the bot's."""
    root = output / "demo"
    synthesise_questions(settings, root / "questions")
    demo = settings.model_copy(update={"memory_block": demo_block(settings.memory_block)})
    records = run_recorded(
        demo,
        memory_settings,
        root / "questions",
        root / "replies",
        realtime=realtime,
        fresh_session=True,
        parts=parts,
    )
    print("\n=== conversation ===")
    for record in records:
        print(f"you: {record.transcript}\n{settings.bot_name}: {' '.join(record.reply)}")
    print("\n=== latency per turn (ms) ===")
    print(per_turn_table(records))
    print("\n=== latency summary ===")
    print(latency_table(records))
    print(f"\nreplies written to {root / 'replies'}")
    return records
