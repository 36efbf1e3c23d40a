"""End to end on the bundled models: a spoken question WAV in, a spoken reply WAV out."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from speech import words

from machine.__main__ import main
from machine.audio.files import read_wav, write_wav
from machine.backends.whisperx_transcriber import WhisperxTranscriber
from machine.ports import SAMPLE_RATE

pytestmark = pytest.mark.e2e


def test_spoken_question_gets_a_spoken_english_reply(
    tmp_path: Path,
    speak_16k: Callable[[str], np.ndarray],
    transcriber: WhisperxTranscriber,
    capsys: pytest.CaptureFixture[str],
) -> None:
    question = tmp_path / "question.wav"
    write_wav(question, speak_16k("Hello Celeste, what do you like to do for fun?"), SAMPLE_RATE)
    out = tmp_path / "out"

    assert main(["--input", str(question), "--output", str(out), "--fast"]) == 0

    replies = sorted(out.glob("reply-*.wav"))
    assert [p.name for p in replies] == ["reply-001.wav"]
    heard = transcriber.transcribe(read_wav(replies[0])).text
    assert len(words(heard)) >= 2 and heard.isascii(), heard

    turns = [json.loads(line) for line in (out / "turns.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(turns) == 1
    turn = turns[0]
    states = turn["states"]
    assert states[:3] == ["idle", "listening", "transcribing"] and states[-3:-1] in (
        ["thinking", "speaking"],
        ["ready", "speaking"],
    ), "work dropped at the comma's pause (if the speaker went on) shows as states before the turn's own"
    assert states[-1] == "listening"
    # spoken whole, or its first sentences spoken before a reply check struck the rest ("cut"): which one is
    # the bundled model's toss-up (the transcript, and so the prompt, moves with the early work's timing)
    assert turn["outcome"] in {"replied", "cut"} and turn["reply"]
    assert "celeste" in words(turn["transcript"])
    order = [
        "last_voiced",
        "endpoint",
        "transcript_ready",
        "first_token",
        "first_sentence",
        "first_audio",
        "done",
    ]
    stamps = [turn[key] for key in order]
    assert stamps == sorted(stamps)
    assert turn["stages"]["voice_to_voice"] > 0

    printed = capsys.readouterr().out
    assert f"you: {turn['transcript']}" in printed and json.dumps(turn["transcript"]) in printed


def test_fast_run_over_a_folder_answers_every_question(
    tmp_path: Path, speak_16k: Callable[[str], np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    """With --fast each file is said the moment the bot listens again: none may be lost (each used to arrive
    inside the blind echo tail and be dropped), and the endpoint stage is measured in audio time."""
    folder = tmp_path / "questions"
    folder.mkdir()
    questions = ["What is your favourite colour?", "Do you like music?", "Where do you live, Celeste?"]
    for index, text in enumerate(questions):
        write_wav(folder / f"q{index}.wav", speak_16k(text), SAMPLE_RATE)
    out = tmp_path / "out"

    assert main(["--input", str(folder), "--output", str(out), "--fast"]) == 0

    turns = [json.loads(line) for line in (out / "turns.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(turns) == len(questions), [t["transcript"] for t in turns]
    for turn, text in zip(turns, questions, strict=True):
        assert words(turn["transcript"])[:2] == words(text)[:2], (turn["transcript"], text)
        endpoint = turn["stages"]["endpoint"]
        # a pause and the turn-end model's verdict (again after a voiced tail, such as a breath, that
        # resumed the turn), or max_silence_ms: of audio, however fast it arrived
        assert 0.15 <= endpoint <= 1.7, endpoint
    assert "no speech heard" not in capsys.readouterr().out
