"""Chatbox bubbles over frames become messages: once settled, once each, grown text waited for, a new message
in the same bubble answered, a bubble that went and came back answered again, never twice while up."""

from __future__ import annotations

from machine.vision.chatbox import GONE_S, ChatboxTracker
from machine.vision.layout import Bubble

SETTLE = 1.0


def bubble(text: str, name: str | None = "Milo", x: int = 100) -> tuple[Bubble, ...]:
    return (Bubble(text, (x, 50, x + 200, 80), name),)


def test_a_message_is_handed_on_once_when_it_has_settled() -> None:
    tracker = ChatboxTracker(SETTLE)
    assert tracker.update(bubble("hi Celeste"), 0.0) == []
    assert tracker.update(bubble("hi Celeste"), 0.5) == []
    (message,) = tracker.update(bubble("hi Celeste"), 1.0)
    assert (message.text, message.name, message.seen_at, message.settled_at) == (
        "hi Celeste",
        "Milo",
        0.0,
        1.0,
    )
    assert tracker.update(bubble("hi Celeste"), 1.5) == []
    assert tracker.update(bubble("hi Celeste"), 30.0) == []  # still up: not again


def test_text_that_grows_as_it_is_typed_is_answered_whole() -> None:
    tracker = ChatboxTracker(SETTLE)
    said = []
    for at, text in [
        (0.0, "what is"),
        (0.5, "what is your"),
        (1.0, "what is your favourite"),
        (1.4, "what is your favourite colour?"),
    ]:
        said += tracker.update(bubble(text), at)
    for at in (1.8, 2.2, 2.6):
        said += tracker.update(bubble("what is your favourite colour?"), at)
    assert [(m.text, m.seen_at) for m in said] == [("what is your favourite colour?", 0.0)]


def test_a_new_message_in_the_same_bubble_is_answered_too() -> None:
    tracker = ChatboxTracker(SETTLE)
    tracker.update(bubble("hi"), 0.0)
    assert [m.text for m in tracker.update(bubble("hi"), 1.0)] == ["hi"]
    tracker.update(bubble("do you like cats?"), 2.0)
    (message,) = tracker.update(bubble("do you like cats?"), 3.0)
    assert (message.text, message.seen_at) == ("do you like cats?", 2.0)


def test_reading_noise_in_case_and_spaces_is_the_same_text() -> None:
    tracker = ChatboxTracker(SETTLE)
    tracker.update(bubble("Hi  there"), 0.0)
    assert len(tracker.update(bubble("hi there"), 1.0)) == 1


def test_two_players_bubbles_are_followed_apart() -> None:
    tracker = ChatboxTracker(SETTLE)
    both = bubble("hi", "Milo", 100) + bubble("hello", "Ana", 150)
    tracker.update(both, 0.0)
    said = tracker.update(both, 1.0)
    assert sorted((m.name, m.text) for m in said) == [("Ana", "hello"), ("Milo", "hi")]


def test_the_same_words_again_after_the_bubble_went_are_not_repeated_within_a_minute_but_later_are() -> None:
    tracker = ChatboxTracker(SETTLE, repeat_s=60.0)
    tracker.update(bubble("hi"), 0.0)
    assert len(tracker.update(bubble("hi"), 1.0)) == 1
    tracker.update((), 1.0 + GONE_S)  # gone
    tracker.update(bubble("hi"), 10.0)
    assert tracker.update(bubble("hi"), 11.0) == []  # a flicker of the same bubble, or the same words
    tracker.update((), 11.0 + GONE_S)
    tracker.update(bubble("hi"), 100.0)
    assert len(tracker.update(bubble("hi"), 101.0)) == 1


def test_a_nameless_bubble_is_followed_by_where_it_is_and_takes_a_name_read_later() -> None:
    tracker = ChatboxTracker(SETTLE)
    tracker.update(bubble("hey", None, 100), 0.0)
    (message,) = tracker.update(bubble("hey", "Kit", 140), 1.0)
    assert message.name == "Kit"


def test_forget_drops_what_was_followed() -> None:
    tracker = ChatboxTracker(SETTLE)
    tracker.update(bubble("hi"), 0.0)
    tracker.forget()
    assert tracker.update(bubble("hi"), 1.0) == []  # a new bubble to it: settles from now
    assert len(tracker.update(bubble("hi"), 2.0)) == 1
