"""What the eyes tell the rest: who is in view names a voice and goes into the prompt, and a question about
the view is answered with the view by a model that sees, or honestly by one that does not."""

from __future__ import annotations

import threading

import numpy as np
from chat_fakes import RecentWindow, ScriptedChatModel, make_thinker

from machine.crowd.attribution import Crowd
from machine.crowd.policy import ReplyPolicy
from machine.crowd.speakers import SpeakerTracker
from machine.ports import Frame
from machine.settings import ReplyPolicySettings

JPEG = b"\xff\xd8 a view \xff\xd9"


class Seeing:
    """A Sight with these names in view and a frame to show."""

    def __init__(self, names: list[str], frame: bool = True) -> None:
        self.names = names
        self.frame = Frame(np.zeros((4, 4, 3), dtype=np.uint8), 0.0) if frame else None
        self.sides: list[int] = []

    def present(self) -> list[str]:
        return list(self.names)

    def latest(self) -> Frame | None:
        return self.frame

    def snapshot(self, max_side: int) -> bytes | None:
        self.sides.append(max_side)
        return JPEG if self.frame is not None else None


def voice(index: int) -> np.ndarray:
    return np.eye(1, 8, index, dtype=np.float32)[0]


def crowd(sight: Seeing) -> Crowd:
    return Crowd(
        None, SpeakerTracker(0.72, "Celeste"), ReplyPolicy(ReplyPolicySettings(), "Celeste"), sight=sight
    )


def test_an_unnamed_voice_takes_the_name_of_the_one_player_in_view() -> None:
    sight = Seeing(["MiloTheFox"])
    who = crowd(sight)
    assert who.attribute(voice(0), "hi there", 0.0).speaker == "MiloTheFox"
    sight.names = ["MiloTheFox", "Ana"]  # two in view: the next voice is not named from a plate
    assert who.attribute(voice(1), "hello", 1.0).speaker == "speaker 2"
    sight.names = ["MiloTheFox"]  # Milo's name is taken: another voice does not get it
    assert who.attribute(voice(2), "yo", 2.0).speaker == "speaker 3"
    assert who.attribute(voice(0), "me again", 3.0).speaker == "MiloTheFox"


def test_a_name_said_wins_over_the_nameplate() -> None:
    who = crowd(Seeing(["MiloTheFox"]))
    assert who.attribute(voice(0), "hi, I'm Robin", 0.0).speaker == "Robin"


def test_the_prompt_names_the_players_in_view() -> None:
    chat = ScriptedChatModel(["Hello everyone!"])
    thinker = make_thinker(chat, RecentWindow(4), sight=Seeing(["MiloTheFox", 'Ana "the great"']))
    assert list(thinker.sentences("hi", threading.Event())) == ["Hello everyone!"]
    system = chat.prompts[0][0].content
    assert "Players you can see nearby (their nameplates): MiloTheFox, Ana 'the great'." in system


def test_a_question_about_the_view_goes_with_the_view_to_a_model_that_sees() -> None:
    chat = ScriptedChatModel(["I see a cosy bar with neon lights."])
    sight = Seeing(["MiloTheFox"])
    thinker = make_thinker(
        chat,
        RecentWindow(4),
        sight=sight,
        backend="openai",
        server={"model": "a-vlm"},
        sees_images=True,
        image_side_px=320,
    )
    said = " ".join(thinker.sentences("What do you see?", threading.Event()))
    assert said == "I see a cosy bar with neon lights."
    *_, asked = chat.prompts[0]
    assert (asked.content, asked.image) == ("What do you see?", JPEG)
    assert sight.sides == [320]


def test_without_a_model_that_sees_the_bot_says_what_it_cannot_see_instead_of_inventing() -> None:
    chat = ScriptedChatModel(["I see a beautiful sunset over the ocean."])
    with_eyes = make_thinker(chat, RecentWindow(4), sight=Seeing(["MiloTheFox", "Ana"]))
    (line,) = list(with_eyes.sentences("Celeste, do you like my avatar?", threading.Event()))
    assert "won't guess" in line and "MiloTheFox and Ana" in line
    blind = make_thinker(chat, RecentWindow(4))
    (line,) = list(blind.sentences("What can you see?", threading.Event()))
    assert "can't see anything" in line
    assert chat.prompts == [], "the model was never asked to describe a view it cannot see"


def test_an_ordinary_question_is_not_about_the_view() -> None:
    chat = ScriptedChatModel(["Yes, I get it."])
    thinker = make_thinker(chat, RecentWindow(4), sight=Seeing([]))
    assert list(thinker.sentences("Do you see what I mean?", threading.Event())) == ["Yes, I get it."]
    assert chat.prompts[0][-1].image is None
