"""Live audio on real devices through PulseAudio null sinks, with the real models."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pulse
import pytest
from chat_fakes import ScriptedChatModel
from speech import word_error_rate, words

from machine.app import Parts
from machine.audio.files import read_wav, write_wav
from machine.backends.whisperx_transcriber import WhisperxTranscriber
from machine.ports import SAMPLE_RATE
from machine.runs.live import run_live
from machine.settings import MachineSettings
from machine.turn_metrics import TurnRecord
from memory_store import MemoryStoreSettings

pytestmark = pytest.mark.audio

REPO = Path(__file__).resolve().parents[1]

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".raw", ".pcm"}


@pytest.fixture(scope="module", autouse=True)
def pulse_server() -> None:
    pulse.ensure_server()


audio_logger = logging.getLogger("machine.audio")


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class LiveBot:
    """The live runtime in a thread, with its finished turns collected."""

    def __init__(self, settings: MachineSettings, memory_settings: MemoryStoreSettings, parts: Parts) -> None:
        self.turns: list[TurnRecord] = []
        self.stop = threading.Event()
        self.failure: list[BaseException] = []
        self.capture_log: list[str] = []
        self._watch = _Collect(self.capture_log)
        audio_logger.addHandler(self._watch)
        audio_logger.setLevel(logging.INFO)
        # a memory of its own: replies remembered by another test would change this one's (an earlier
        # reply said again is a strike)
        self._store = Path(tempfile.mkdtemp(prefix="live-memory-"))
        own_memory = memory_settings.model_copy(update={"path": self._store})
        self._thread = threading.Thread(target=self._run, args=(settings, own_memory, parts), daemon=True)
        self._thread.start()
        self.wait_for(lambda: self.logged("capturing from") > 0, timeout=120)
        time.sleep(0.5)

    def logged(self, text: str) -> int:
        return sum(text in line for line in self.capture_log)

    def speaking(self) -> bool:
        return self.logged("playing to") > 0

    def _run(self, settings: MachineSettings, memory_settings: MemoryStoreSettings, parts: Parts) -> None:
        try:
            run_live(settings, memory_settings, stop=self.stop, on_turn=self.turns.append, parts=parts)
        except BaseException as exc:
            self.failure.append(exc)

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert not self.failure, self.failure
            assert time.monotonic() < deadline, f"timed out; turns so far: {self.turns}"
            time.sleep(0.1)

    def close(self) -> float:
        started = time.monotonic()
        self.stop.set()
        self._thread.join(timeout=10)
        audio_logger.removeHandler(self._watch)
        assert not self._thread.is_alive(), "the runtime did not stop"
        shutil.rmtree(self._store, ignore_errors=True)
        assert not self.failure, self.failure
        return time.monotonic() - started


def live_settings(settings: MachineSettings, source: str, sink: str) -> MachineSettings:
    audio = settings.audio.model_copy(
        update={"input_device": f"pulse:{source}", "output_device": f"pulse:{sink}"}
    )
    return settings.model_copy(update={"audio": audio})


@pytest.fixture
def question(tmp_path: Path, speak_16k: Callable[[str], np.ndarray]) -> Iterator[Path]:
    path = tmp_path / "question.wav"
    audio = np.concatenate(
        [np.zeros(SAMPLE_RATE // 2, dtype=np.float32), speak_16k("Hello Celeste, do you like music?")]
    )
    write_wav(path, audio, SAMPLE_RATE)
    yield path


def spoke(turn: TurnRecord) -> bool:
    """The bot said something: a whole reply, or the part before a strike ended it ("cut")."""
    return bool(turn.reply) and turn.outcome in {"replied", "cut"}


def replied(bot: LiveBot) -> Callable[[], bool]:
    return lambda: any(spoke(t) for t in bot.turns)


def turns_done(bot: LiveBot, count: int) -> Callable[[], bool]:
    return lambda: len(bot.turns) >= count


def test_question_on_the_input_is_answered_on_the_output(
    settings: MachineSettings,
    memory_settings: MemoryStoreSettings,
    loaded: Parts,
    question: Path,
    tmp_path: Path,
    transcriber: WhisperxTranscriber,
) -> None:
    with pulse.null_sinks("user", "bot") as sinks:
        heard = tmp_path / "bot_output.wav"
        with pulse.recording(f"{sinks['bot']}.monitor", heard):
            bot = LiveBot(
                live_settings(settings, f"{sinks['user']}.monitor", sinks["bot"]), memory_settings, loaded
            )
            pulse.play(sinks["user"], question)
            bot.wait_for(replied(bot), timeout=120)
            stop_took = bot.close()
    turn = next(t for t in bot.turns if spoke(t))
    assert "music" in words(turn.transcript)
    said = " ".join(turn.reply)
    recorded = transcriber.transcribe(read_wav(heard)).text
    assert word_error_rate(said, recorded) <= 0.35, (said, recorded)
    assert stop_took < 2.0, "stops cleanly within a second or so"


REPLY_TO_LEARN_FROM = "I love music, especially songs with a good beat."
"""A reply long enough (about 3 s) for the echo gate to learn the echo path from (2.3 s over a 1 s delay):
the bundled model's own first reply is sometimes too short (a documented limit), which made the echo tests a
toss-up of the model."""
SECOND_REPLY = "Yes, I do, and I listen to something new every day."


def speaking_at_length(loaded: Parts) -> Parts:
    """The loaded models with a chat model whose replies are long enough to learn the echo from (the first
    reply of a run is a warm-up token, then REPLY_TO_LEARN_FROM, then SECOND_REPLY)."""
    replies = ["Hi.", REPLY_TO_LEARN_FROM, SECOND_REPLY, REPLY_TO_LEARN_FROM, SECOND_REPLY]
    return dataclasses.replace(loaded, chat_model=ScriptedChatModel(replies))


@pytest.mark.xfail(
    strict=False,
    reason="open defect (issue #25 closing note): in 2 of 5 full runs on 2026-12-07 the bot heard the end of "
    "its own first reply in a room (direct echo) and took it for a turn; passes alone",
)
def test_the_bot_does_not_hear_itself(
    settings: MachineSettings, memory_settings: MemoryStoreSettings, question: Path, loaded: Parts
) -> None:
    with pulse.null_sinks("room") as sinks:
        # the bot speaks into the room and listens to the room: its own voice comes straight back. Its
        # replies are scripted and long enough to learn the echo from (the bundled model's reply is a
        # toss-up in length)
        bot = LiveBot(
            live_settings(settings, f"{sinks['room']}.monitor", sinks["room"]),
            memory_settings,
            speaking_at_length(loaded),
        )
        pulse.play(sinks["room"], question)
        bot.wait_for(replied(bot), timeout=120)
        time.sleep(4.0)  # long enough for any echo of the reply to be endpointed and transcribed
        bot.close()
    assert [spoke(t) for t in bot.turns] == [True], [(t.transcript, t.outcome) for t in bot.turns]


def test_a_vanished_input_device_is_reopened(
    settings: MachineSettings, memory_settings: MemoryStoreSettings, question: Path, loaded: Parts
) -> None:
    with pulse.null_sinks("bot") as sinks:
        name = "vanishing_input"
        module = pulse.load_null_sink(name)
        bot = LiveBot(live_settings(settings, f"{name}.monitor", sinks["bot"]), memory_settings, loaded)
        try:
            pulse.unload(module)
            bot.wait_for(lambda: bot.logged("input device lost") > 0, timeout=15)
            module = pulse.load_null_sink(name)
            bot.wait_for(lambda: bot.logged("input device reopened") > 0, timeout=30)
            time.sleep(1.0)
            pulse.play(name, question)
            bot.wait_for(replied(bot), timeout=120)
        finally:
            bot.close()
            pulse.unload(module)


def test_no_audio_is_written_anywhere(
    settings: MachineSettings,
    memory_settings: MemoryStoreSettings,
    loaded: Parts,
    question: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.time()
    monkeypatch.chdir(tmp_path)
    with pulse.null_sinks("user", "bot") as sinks:
        bot = LiveBot(
            live_settings(settings, f"{sinks['user']}.monitor", sinks["bot"]), memory_settings, loaded
        )
        pulse.play(sinks["user"], question)
        bot.wait_for(replied(bot), timeout=120)
        bot.close()
    question.unlink()  # the test's own input
    places = [tmp_path, REPO / "data", REPO / "out", REPO / "logs"]
    written = [
        p
        for place in places
        if place.exists()
        for p in place.rglob("*")
        if p.suffix.lower() in AUDIO_SUFFIXES and p.stat().st_mtime >= started
    ]
    assert written == []
    assert not any(hasattr(t, "samples") for t in bot.turns)


def test_a_user_at_the_bots_level_talks_over_it_stops_it_and_is_answered(
    settings: MachineSettings,
    memory_settings: MemoryStoreSettings,
    loaded: Parts,
    tmp_path: Path,
    speak_16k: Callable[[str], np.ndarray],
) -> None:
    """Separate cables, barge-in on: the input is silent while the bot speaks, so a user as loud as the bot
    (not louder) stops it; what they said is the next turn. The stop takes about `barge_in_ms` once the echo
    path is known (bench/barge_in.py measures it); this test allows a generous bound against a hang."""
    interruption = tmp_path / "interruption.wav"
    write_wav(interruption, speak_16k("What is your favourite colour?"), SAMPLE_RATE)
    long_question = tmp_path / "long.wav"
    write_wav(long_question, speak_16k("Can you tell me a long story about the moon?"), SAMPLE_RATE)
    long_reply = settings.chat_model.model_copy(update={"max_sentences": 6, "max_new_tokens": 200})
    # a long first sentence must not be struck (and the reply cut to a first piece of a second or so): the
    # echo path is learned from the first 2.3 s of the bot's voice, and the user talks over it after that;
    # over a reply too short to learn from, the gate assumes the worst and a user as loud as it is masked
    rambling = settings.reply_checks.model_copy(update={"max_sentence_chars": 2000})
    slow_voice = settings.synthesizer.model_copy(update={"length_scale": 2.0})
    with pulse.null_sinks("user", "bot") as sinks:
        live = live_settings(settings, f"{sinks['user']}.monitor", sinks["bot"])
        audio = live.audio.model_copy(update={"barge_in": True})
        bot = LiveBot(
            live.model_copy(
                update={
                    "audio": audio,
                    "chat_model": long_reply,
                    "reply_checks": rambling,
                    "synthesizer": slow_voice,
                }
            ),
            memory_settings,
            dataclasses.replace(loaded, synthesizer=None),  # the slow voice is its own
        )
        meter = pulse.LevelMeter(f"{sinks['bot']}.monitor")
        try:
            pulse.play(sinks["user"], long_question)
            meter.wait(lambda: meter.loud_for(0.5), timeout=120)
            pulse.play(sinks["user"], interruption)
            bot.wait_for(lambda: len(bot.turns) >= 2, timeout=60)
        finally:
            meter.close()
            bot.close()
    assert [t.outcome for t in bot.turns[:1]] == ["interrupted"], [
        (t.transcript, t.outcome) for t in bot.turns
    ]
    assert bot.turns[0].reply, "the interrupted turn records what the bot had started saying"
    assert bot.turns[0].playback.delivered_s < bot.turns[0].playback.synthesised_s, "the reply was cut short"
    assert {"favourite", "favorite"} & set(words(bot.turns[1].transcript)), bot.turns[1].transcript
    assert "colour" in words(bot.turns[1].transcript) or "color" in words(bot.turns[1].transcript)


def test_a_user_who_starts_as_the_bot_finishes_keeps_their_first_words(
    settings: MachineSettings,
    memory_settings: MemoryStoreSettings,
    loaded: Parts,
    question: Path,
    tmp_path: Path,
    speak_16k: Callable[[str], np.ndarray],
) -> None:
    """Half-duplex, separate cables: the next question starts the moment the reply's turn ends. A blind echo
    tail used to drop its first words ("What is your favourite colour?" heard as "Your favorite color.")."""
    follow_up = tmp_path / "follow_up.wav"
    write_wav(follow_up, speak_16k("What is your favourite colour?"), SAMPLE_RATE)
    with pulse.null_sinks("user", "bot") as sinks:
        bot = LiveBot(
            live_settings(settings, f"{sinks['user']}.monitor", sinks["bot"]), memory_settings, loaded
        )
        try:
            pulse.play(sinks["user"], question)
            bot.wait_for(lambda: len(bot.turns) >= 1, timeout=120)
            pulse.play(sinks["user"], follow_up)
            bot.wait_for(lambda: len(bot.turns) >= 2, timeout=60)
        finally:
            bot.close()
    heard = words(bot.turns[1].transcript)
    assert heard[:2] == ["what", "is"], bot.turns[1].transcript


def test_a_one_second_echo_is_never_answered(
    settings: MachineSettings, memory_settings: MemoryStoreSettings, question: Path, loaded: Parts
) -> None:
    """Half-duplex over an echo path 1 s long (longer than any blind tail): the bot's voice comes back on its
    input a second late, after it stopped speaking; it answers the questions and never its own voice."""
    with (
        pulse.null_sinks("user", "bot") as sinks,
        pulse.loopback(f"{sinks['bot']}.monitor", sinks["user"], 1000),
    ):
        bot = LiveBot(
            live_settings(settings, f"{sinks['user']}.monitor", sinks["bot"]),
            memory_settings,
            speaking_at_length(loaded),
        )
        try:
            for asked in (1, 2):
                pulse.play(sinks["user"], question)
                bot.wait_for(turns_done(bot, asked), timeout=120)
                time.sleep(6.0)  # the echo of the reply, and anything made of it, would show by now
        finally:
            bot.close()
    assert len(bot.turns) == 2, [(t.transcript, t.outcome) for t in bot.turns]
    assert all("music" in words(t.transcript) for t in bot.turns), [t.transcript for t in bot.turns]


def test_sigterm_stops_the_process_promptly(tmp_path: Path) -> None:
    with pulse.null_sinks("user", "bot") as sinks:
        env = {
            **os.environ,
            "MACHINE_AUDIO__INPUT_DEVICE": f"pulse:{sinks['user']}.monitor",
            "MACHINE_AUDIO__OUTPUT_DEVICE": f"pulse:{sinks['bot']}",
        }
        log = tmp_path / "machine.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "machine"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO
            )
        try:
            deadline = time.monotonic() + 180
            while "capturing from" not in log.read_text(errors="replace"):
                assert process.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, "the runtime never started capturing"
                time.sleep(0.2)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=10)
            took = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
    text = log.read_text(errors="replace")
    assert code == 0, text
    stopped = re.search(r"stopped (\d+\.\d+) s after being asked to", text)
    assert stopped is not None, text
    assert float(stopped.group(1)) < 1.0, "streams closed and the runtime stopped within a second"
    assert took < 15.0, f"the process hung for {took:.2f} s after stopping"
