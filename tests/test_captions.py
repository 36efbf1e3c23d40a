"""Chatbox captions: pages that fit VRChat's chatbox, sent to a real OSC server on loopback, spaced and in
step with speech; the typing indicator; failures that never reach the conversation; the Speaker's hook.

No test sleeps to let time pass: tests wait (with an anti-hang bound) for a message to arrive, order events
with a later message that would queue behind anything wrongly kept, or close the captions (which stops the
sender thread) before reading what was sent."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient
from test_runtime import MemorySink, ToneSynthesizer
from test_settings import write_config

from companion_settings import ConfigError
from machine.ports import FloatAudio, SpeechAudio
from machine.settings import CaptionSettings, load_settings
from machine.speak.captions import (
    INPUT_ADDRESS,
    MAX_CHARS,
    MAX_LINES,
    TYPING_ADDRESS,
    ChatboxCaptions,
    paginate,
)
from machine.speak.speaker import Speaker

INTERVAL_S = 0.25
"""The spacing the tests configure (VRChat needs 1.5 s; tests would take too long)."""

TOLERANCE_S = 0.1
"""Sends are stamped just after the sender decided to send: a sender thread preempted in between (tens of
milliseconds on a busy 2-core machine) stamps one page late, so the next gap may look that much shorter."""

REPLY = (
    "Oh, that is a lovely question, and I have been thinking about it all evening while the stars came out "
    "over the lake. Honestly, the best part of any world is the people who wander through it, the strangers "
    "who wave, the friends who stay up far too late, and the quiet moments when nobody says anything at "
    "all. So tell me, what brought you here tonight, and would you like to explore the forest path with me "
    "before the music starts again?"
)


@dataclass(frozen=True)
class Received:
    address: str
    args: tuple[object, ...]
    at: float


class Chatbox:
    """A real OSC server on 127.0.0.1 that records every message it receives, in order, and a log of every
    message the captions send (stamped with the monotonic time of the send, failed sends included)."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.sends: list[Received] = []
        self._changed = threading.Condition()
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self._record)
        self.server = BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
        self.port = self.server.server_address[1]

    def _record(self, address: str, *args: object) -> None:
        with self._changed:
            self.messages.append(Received(address, args, time.monotonic()))
            self._changed.notify_all()

    def record_send(self, address: str, args: list[str | bool]) -> None:
        with self._changed:
            self.sends.append(Received(address, tuple(args), time.monotonic()))
            self._changed.notify_all()

    def received(self, address: str) -> list[Received]:
        with self._changed:
            return [message for message in self.messages if message.address == address]

    def sent(self, address: str) -> list[Received]:
        """What the captions sent to `address`; final once they are closed (the sender has stopped)."""
        with self._changed:
            return [message for message in self.sends if message.address == address]

    def texts(self) -> list[str]:
        return [str(message.args[0]) for message in self.received(INPUT_ADDRESS)]

    def sent_texts(self) -> list[str]:
        return [str(message.args[0]) for message in self.sent(INPUT_ADDRESS)]

    def typing(self) -> list[object]:
        return [message.args[0] for message in self.received(TYPING_ADDRESS)]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Returns once `condition` holds (woken by every message); the timeout is an anti-hang bound."""
        with self._changed:
            reached = self._changed.wait_for(condition, timeout)
        assert reached, f"the chatbox never got there: received {self.messages}, sent {self.sends}"


@pytest.fixture
def chatbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[Chatbox]:
    box = Chatbox()
    send = SimpleUDPClient.send_message

    def recorded_send(client: SimpleUDPClient, address: str, value: list[str | bool]) -> None:
        box.record_send(address, value)
        send(client, address, value)

    monkeypatch.setattr(SimpleUDPClient, "send_message", recorded_send)
    thread = threading.Thread(target=box.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield box
    box.server.shutdown()
    box.server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def open_captions(chatbox: Chatbox) -> Iterator[Callable[..., ChatboxCaptions]]:
    opened: list[ChatboxCaptions] = []

    def open_(**options: Any) -> ChatboxCaptions:
        captions = ChatboxCaptions("127.0.0.1", chatbox.port, **{"min_interval_s": INTERVAL_S, **options})
        opened.append(captions)
        return captions

    yield open_
    for captions in opened:
        captions.close()


def assert_fits_the_chatbox(page: str) -> None:
    assert page and page == page.strip()
    assert len(page.encode("utf-16-le")) // 2 <= MAX_CHARS
    assert page.count("\n") + 1 <= MAX_LINES


# --- pages ---------------------------------------------------------------------------------------------

words = st.text(st.characters(codec="utf-8", exclude_categories=["Z", "C"]), min_size=1, max_size=30)
separators = st.sampled_from([" ", "  ", "\n", "\n\n", " \n", "\t"])


@given(st.lists(st.tuples(words, separators), max_size=120))
def test_pages_fit_the_chatbox_and_give_every_word_back(pieces: list[tuple[str, str]]) -> None:
    text = "".join(word + separator for word, separator in pieces)
    pages = paginate(text)
    for page in pages:
        assert_fits_the_chatbox(page)
    # every word comes back whole and in order (a word cut in two would come back as two)
    assert " ".join(pages).split() == text.split()


def test_pages_break_on_lines_and_cut_only_words_longer_than_a_page() -> None:
    assert paginate("") == [] and paginate(" \n ") == []
    eleven_lines = "\n".join(f"line {n}" for n in range(11))
    pages = paginate(eleven_lines + "\n\n")
    assert pages == ["\n".join(f"line {n}" for n in range(9)), "line 9\nline 10"]
    long_word = "a" * 300
    pages = paginate(f"see {long_word} here")
    assert pages == ["see", "a" * MAX_CHARS, "a" * MAX_CHARS, "a" * 12 + " here"]
    emoji = "\N{GRINNING FACE}" * 100  # two UTF-16 units each, as VRChat counts
    pages = paginate(emoji)
    assert [len(page) for page in pages] == [72, 28]
    for page in pages:
        assert_fits_the_chatbox(page)


# --- sending -------------------------------------------------------------------------------------------


def test_typing_indicator_is_on_while_thinking_and_off_when_speaking(
    chatbox: Chatbox, open_captions: Callable[..., ChatboxCaptions]
) -> None:
    captions = open_captions()
    captions.thinking()
    chatbox.wait_for(lambda: chatbox.typing() == [True])
    captions.saying("Hello there, friend.", 1.0)
    chatbox.wait_for(lambda: chatbox.texts() == ["Hello there, friend."])
    assert chatbox.typing() == [True, False]
    assert chatbox.received(INPUT_ADDRESS)[0].args == ("Hello there, friend.", True, False)
    captions.thinking()
    captions.idle()
    chatbox.wait_for(lambda: chatbox.typing()[-1:] == [False])


@pytest.mark.parametrize("duration_s", [1.2, 0.1], ids=["paced-by-speech", "paced-by-spacing"])
def test_a_long_reply_is_paged_in_order_spaced_and_in_step_with_speech(
    chatbox: Chatbox, open_captions: Callable[..., ChatboxCaptions], duration_s: float
) -> None:
    expected = paginate(REPLY)
    assert len(expected) == 4
    captions = open_captions()
    started = time.monotonic()
    captions.saying(REPLY, duration_s)
    chatbox.wait_for(lambda: len(chatbox.texts()) == len(expected))
    captions.close()  # the sender stops: what it sent is final
    assert chatbox.texts() == expected
    pages = chatbox.sent(INPUT_ADDRESS)
    assert [page.args[0] for page in pages] == expected, "nothing more was sent"
    for page in pages:
        assert_fits_the_chatbox(str(page.args[0]))
    assert " ".join(str(page.args[0]) for page in pages).split() == REPLY.split()
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(pages)]
    assert min(gaps) >= INTERVAL_S - TOLERANCE_S, gaps
    # page n is not sent before its words are spoken (n/4 of the way through the sentence)
    for index, page in enumerate(pages):
        assert page.at - started >= index * duration_s / len(pages)


def test_sentences_faster_than_the_spacing_are_merged_not_lost(
    chatbox: Chatbox, open_captions: Callable[..., ChatboxCaptions]
) -> None:
    captions = open_captions(min_interval_s=2 * INTERVAL_S)
    captions.saying("One.", 0.05)
    chatbox.wait_for(lambda: chatbox.texts() == ["One."])
    captions.saying("Two.", 0.05)  # both wait for the spacing, then go out together
    captions.saying("Three.", 0.05)
    chatbox.wait_for(lambda: len(chatbox.texts()) == 2)
    captions.close()
    assert chatbox.texts() == chatbox.sent_texts() == ["One.", "Two. Three."]
    first, second = chatbox.sent(INPUT_ADDRESS)
    assert second.at - first.at >= 2 * INTERVAL_S - TOLERANCE_S


def test_the_oldest_unshown_pages_are_dropped_when_too_many_wait(
    chatbox: Chatbox, open_captions: Callable[..., ChatboxCaptions]
) -> None:
    sentences = [f"Sentence {n:02d} " + "x" * (MAX_CHARS - 12) for n in range(10)]  # one full page each
    captions = open_captions(max_pending_pages=3)
    for sentence in sentences:
        captions.saying(sentence, 0.0)
    chatbox.wait_for(lambda: chatbox.texts()[-1:] == sentences[-1:])
    captions.close()
    shown = chatbox.sent_texts()
    assert chatbox.texts() == shown
    assert shown[-3:] == sentences[-3:]  # the newest are kept, in order
    assert len(shown) < len(sentences)  # older ones were dropped (the first may have gone out at once)
    assert shown == sorted(shown) and set(shown) <= set(sentences)


def test_idle_drops_the_pages_not_yet_spoken(
    chatbox: Chatbox, open_captions: Callable[..., ChatboxCaptions]
) -> None:
    captions = open_captions()
    captions.thinking()
    chatbox.wait_for(lambda: chatbox.typing() == [True])
    captions.saying(REPLY, 1.0)  # pages due at 0, 0.25, 0.5 and 0.75 s
    captions.idle()  # interrupted while the first page is spoken
    # due at once, so it queues behind any page idle() wrongly kept, and goes out after them
    captions.saying("Fence.", 0.0)
    chatbox.wait_for(lambda: "Fence." in " ".join(chatbox.texts()))
    captions.close()
    shown = " ".join(chatbox.sent_texts())
    assert shown.split() == f"{paginate(REPLY)[0]} Fence.".split()
    assert chatbox.typing() == [True, False]


def test_idle_still_shows_the_pages_already_spoken(
    chatbox: Chatbox, open_captions: Callable[..., ChatboxCaptions]
) -> None:
    captions = open_captions()
    captions.saying(REPLY, 0.0)  # all four pages spoken at once, the spacing holds three back
    captions.idle()
    chatbox.wait_for(lambda: chatbox.texts() == paginate(REPLY))


def test_the_sound_and_the_indicator_follow_the_options(
    chatbox: Chatbox, open_captions: Callable[..., ChatboxCaptions]
) -> None:
    captions = open_captions(notify_sound=True, typing_indicator=False)
    captions.thinking()
    captions.saying("Ding.", 0.5)
    chatbox.wait_for(lambda: chatbox.texts() == ["Ding."])
    captions.idle()
    captions.close()
    assert chatbox.received(INPUT_ADDRESS)[0].args == ("Ding.", True, True)
    assert chatbox.sent(TYPING_ADDRESS) == []


def test_close_turns_the_indicator_off(
    chatbox: Chatbox, open_captions: Callable[..., ChatboxCaptions]
) -> None:
    captions = open_captions()
    captions.thinking()
    chatbox.wait_for(lambda: chatbox.typing() == [True])
    captions.close()
    chatbox.wait_for(lambda: chatbox.typing() == [True, False])


def test_close_drops_what_is_not_shown(
    chatbox: Chatbox, open_captions: Callable[..., ChatboxCaptions]
) -> None:
    threads = set(threading.enumerate())
    captions = open_captions()
    captions.saying(REPLY, 1.0)  # pages due at 0, 0.25, 0.5 and 0.75 s
    captions.close()
    assert set(threading.enumerate()) <= threads, "the sender has stopped: nothing more can be sent"
    captions.close()  # twice is harmless
    captions.saying("After the end.", 0.1)  # and so is a late call
    assert set(threading.enumerate()) <= threads
    assert chatbox.sent_texts() in ([], paginate(REPLY)[:1])  # the first page may have gone out at once


def test_send_failures_are_logged_once_and_never_reach_the_conversation(
    chatbox: Chatbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="machine.speak.captions")
    # a broadcast address without SO_BROADCAST: every send fails with a PermissionError
    captions = ChatboxCaptions("255.255.255.255", 9000, min_interval_s=INTERVAL_S)
    started = time.monotonic()
    captions.thinking()
    captions.saying(REPLY, 0.1)  # four pages: four failing sends, 0.25 s apart
    assert time.monotonic() - started < 1.0  # anti-hang bound: the calls only hand over
    chatbox.wait_for(lambda: len(chatbox.sent(INPUT_ADDRESS)) == 4)  # the typing indicator failed first
    captions.idle()
    captions.close()  # the sender has stopped: everything it logged is in
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "255.255.255.255:9000" in warnings[0].getMessage()
    assert "goes on without them" in warnings[0].getMessage()


# --- settings ------------------------------------------------------------------------------------------


def test_captions_are_off_by_default_and_open_from_the_settings(chatbox: Chatbox) -> None:
    assert CaptionSettings().enabled is False
    captions = ChatboxCaptions.from_settings(CaptionSettings(enabled=True, port=chatbox.port))
    try:
        captions.saying("From the settings.", 0.5)
        chatbox.wait_for(lambda: chatbox.texts() == ["From the settings."])
        assert chatbox.received(INPUT_ADDRESS)[0].args[2] is False
    finally:
        captions.close()


def test_a_host_that_does_not_resolve_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"machine\.captions\.host: cannot resolve 'no-such-host\.invalid'"):
        ChatboxCaptions.from_settings(CaptionSettings(enabled=True, host="no-such-host.invalid"))


@pytest.mark.parametrize(
    ("captions", "key", "allowed"),
    [
        ({"port": 70000}, "machine.captions.port", "less than or equal to 65535"),
        ({"port": 0}, "machine.captions.port", "greater than or equal to 1"),
        ({"host": "http://vrchat"}, "machine.captions.host", "should match pattern"),
        ({"min_interval_s": 0.5}, "machine.captions.min_interval_s", "greater than or equal to 1"),
        ({"notify": True}, "machine.captions.notify", "Extra inputs are not permitted"),
    ],
)
def test_wrong_caption_settings_name_the_key(
    tmp_path: Path, captions: dict[str, object], key: str, allowed: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(write_config(tmp_path, {"captions": captions}))
    assert key in str(error.value) and allowed in str(error.value)


# --- the Speaker's hook --------------------------------------------------------------------------------


class TwoChunkSynthesizer:
    """Yields each sentence as two chunks: 0.1 s, then 0.05 s."""

    sample_rate = 16_000

    def rest(self) -> None:
        pass

    def synthesize(self, text: str) -> Iterator[SpeechAudio]:
        yield SpeechAudio(np.full(1600, 0.1, dtype=np.float32), self.sample_rate)
        yield SpeechAudio(np.full(800, 0.1, dtype=np.float32), self.sample_rate)


class EventSink(MemorySink):
    """Records plays in the same list as the hook's calls, to check their order."""

    def __init__(self, events: list[object]) -> None:
        super().__init__()
        self.events = events

    def play(self, audio: FloatAudio, cancel: threading.Event) -> None:
        super().play(audio, cancel)
        self.events.append(("play", len(audio)))


def test_speaker_announces_each_sentence_as_its_first_audio_starts() -> None:
    events: list[object] = []
    speaker = Speaker(TwoChunkSynthesizer(), EventSink(events))
    played = speaker.speak(
        iter(["Hello.", "How are you?"]),
        threading.Event(),
        on_sentence=lambda sentence, duration_s: events.append((sentence, duration_s)),
    )
    assert played.sentences == ["Hello.", "How are you?"]
    assert events == [
        ("Hello.", 0.1),
        ("play", 1600),
        ("play", 800),
        ("How are you?", 0.1),
        ("play", 1600),
        ("play", 800),
    ]


def test_speaker_passes_the_whole_sentence_for_one_chunk_per_sentence() -> None:
    announced: list[tuple[str, float]] = []
    synthesizer = ToneSynthesizer()  # one 0.1 s chunk per sentence, like Piper
    Speaker(synthesizer, MemorySink()).speak(
        iter(["One.", "Two."]),
        threading.Event(),
        on_sentence=lambda sentence, duration_s: announced.append((sentence, duration_s)),
    )
    assert announced == [("One.", 0.1), ("Two.", 0.1)]
