"""Crowds without models: the reply policy (addressed, follow-ups, the main speaker), speakers told apart
by their voices' embeddings and named when they say their name, and a prompt that keeps each speaker's
facts with them."""

from __future__ import annotations

import numpy as np
import pytest

from machine.crowd.attribution import Crowd
from machine.crowd.policy import ReplyPolicy, says_name
from machine.crowd.speakers import MAX_SPEAKERS, SpeakerTracker
from machine.ports import Exchange, FloatAudio, MemoryContext
from machine.reply.thinking import build_messages
from machine.settings import ReplyPolicySettings
from machine.shared.names import name_said


def voice(seed: int, wobble: float = 0.0, turn: int = 0) -> np.ndarray:
    """A unit vector standing for voice `seed`, varied a little per utterance by `wobble`."""
    base = np.random.default_rng(seed).standard_normal(256)
    noise = np.random.default_rng(1000 * seed + turn).standard_normal(256)
    vector = base / np.linalg.norm(base) + wobble * noise / np.linalg.norm(noise)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


@pytest.mark.parametrize(
    ("transcript", "said"),
    [
        ("Celeste, do you like music?", True),
        ("Hey Celest, how are you?", True),  # whisper's spelling
        ("Selest what time is it", True),
        ("Do you like cats?", False),
        ("I like celery", False),
        ("The lesson is over", False),
    ],
)
def test_the_name_is_heard_in_whispers_spellings(transcript: str, said: bool) -> None:
    assert says_name(transcript, ["Celeste"], 0.75) is said


def test_addressed_answers_the_name_and_a_follow_up_but_not_cross_talk() -> None:
    policy = ReplyPolicy(ReplyPolicySettings(policy="addressed", follow_up_s=20.0), "Celeste")
    assert not policy.addressed("Did you see that jump?", "speaker 1", now=0.0)
    assert policy.addressed("Celeste, do you like music?", "speaker 1", now=1.0)
    policy.answered("speaker 1", now=5.0)
    assert policy.addressed("And dogs?", "speaker 1", now=10.0), "a follow-up within 20 s"
    assert not policy.addressed("Pass me that", "speaker 2", now=11.0), "someone else, no name"
    assert not policy.addressed("Sure, here", "speaker 1", now=12.0), "someone else spoke in between"
    policy.answered("speaker 1", now=13.0)
    assert not policy.addressed("And cats?", "speaker 1", now=40.0), "too late for a follow-up"


def test_the_main_speaker_holds_the_floor_until_someone_else_says_the_name() -> None:
    policy = ReplyPolicy(ReplyPolicySettings(policy="main_speaker", follow_up_s=5.0), "Celeste")
    assert policy.addressed("Celeste, tell me a story", "Robin", now=0.0)
    assert policy.addressed("What happened next?", "Robin", now=300.0), "the floor does not time out"
    assert not policy.addressed("Robin, come here", "Sam", now=301.0)
    assert policy.addressed("Celeste, my turn", "Sam", now=302.0)
    assert not policy.addressed("Hey, wait", "Robin", now=303.0)


def test_always_answers_everyone() -> None:
    policy = ReplyPolicy(ReplyPolicySettings(policy="always"), "Celeste")
    assert policy.addressed("Did you see that jump?", "speaker 2", now=0.0)


def test_voices_are_told_apart_and_a_speaker_is_named_when_they_say_it() -> None:
    tracker = SpeakerTracker(threshold=0.75, bot_name="Celeste")
    heard = [
        tracker.identify(voice(1, 0.3, 0), "Hi everyone").label,
        tracker.identify(voice(2, 0.3, 0), "I'm Robin, by the way").label,
        tracker.identify(voice(1, 0.3, 1), "Nice to meet you").label,
        tracker.identify(voice(2, 0.3, 1), "So what now?").label,
        tracker.identify(voice(3, 0.3, 0), "Hello?").label,
    ]
    assert heard == ["speaker 1", "Robin", "speaker 1", "Robin", "speaker 3"]
    tracker.forget()
    assert tracker.speakers == ()
    assert tracker.identify(voice(2, 0.3, 2)).label == "speaker 1", "a new session starts over"


def test_a_busy_evening_keeps_the_voices_heard_most_recently() -> None:
    tracker = SpeakerTracker(threshold=0.75)
    regular = tracker.identify(voice(1), "I'm Robin")
    for seed in range(2, MAX_SPEAKERS + 40):  # passers-by, each heard once; Robin speaks now and then
        tracker.identify(voice(seed))
        if seed % 10 == 0:
            assert tracker.identify(voice(1, 0.1, seed)) is regular
    assert len(tracker.speakers) == MAX_SPEAKERS
    assert regular in tracker.speakers
    assert tracker.identify(voice(2)).label == f"speaker {MAX_SPEAKERS + 40}", (
        "a forgotten voice is new again"
    )
    assert [s.number for s in tracker.speakers] == sorted(s.number for s in tracker.speakers)


@pytest.mark.parametrize(
    ("transcript", "name"),
    [
        ("I'm Robin.", "Robin"),
        ("hi, my name is Sam", "Sam"),
        ("Call me Alex-Kim please", "Alex-Kim"),
        ("I'm fine, thanks", None),
        ("I'm Celeste", None),  # the bot's own name
        ("I am going home", None),
    ],
)
def test_names_said(transcript: str, name: str | None) -> None:
    assert name_said(transcript, "Celeste") == name


class _Voices:
    def __init__(self, voices: list[np.ndarray]) -> None:
        self._voices = iter(voices)

    def embed(self, speech: FloatAudio) -> np.ndarray:
        return next(self._voices)


def test_the_crowd_labels_the_speaker_and_asks_the_policy() -> None:
    crowd = Crowd(
        _Voices([voice(1), voice(2), voice(1)]),
        SpeakerTracker(0.75, "Celeste"),
        ReplyPolicy(ReplyPolicySettings(policy="addressed"), "Celeste"),
    )
    speech = np.zeros(16000, dtype=np.float32)
    first = crowd.hear(speech, "Celeste, hi!", now=0.0)
    second = crowd.hear(speech, "Who is that?", now=1.0)
    assert (first.speaker, first.addressed, first.crowd) == ("speaker 1", True, False)
    assert (second.speaker, second.addressed, second.crowd) == ("speaker 2", False, True)
    crowd.answered("speaker 1", now=2.0)
    assert crowd.hear(speech, "And you?", now=3.0).addressed


def test_an_attribution_not_learned_leaves_the_session_as_it_was() -> None:
    """A turn started early may still be dropped: its attribution says who it would be, and adds no
    speaker, takes no name and gives nobody the floor until it is attributed again to be learned."""
    crowd = Crowd(
        _Voices([voice(1), voice(2), voice(2)]),
        SpeakerTracker(0.75, "Celeste"),
        ReplyPolicy(ReplyPolicySettings(policy="main_speaker"), "Celeste"),
    )
    speech = np.zeros(16000, dtype=np.float32)
    assert crowd.hear(speech, "Hello there.", now=0.0).speaker == "speaker 1"

    half = crowd.voice(speech)
    would_be = crowd.attribute(half, "Celeste, I'm Robin and", now=1.0, learn=False)
    assert (would_be.speaker, would_be.addressed, would_be.crowd) == ("Robin", True, True)
    assert [s.label for s in crowd._tracker.speakers] == ["speaker 1"], "no speaker was added"
    assert not crowd.attribute(half, "I'm Robin, what now", now=1.5, learn=False).addressed, (
        "Robin did not take the floor"
    )

    whole = crowd.attribute(crowd.voice(speech), "Celeste, I'm Robin and I like chess", now=2.0)
    assert (whole.speaker, whole.addressed) == ("Robin", True)
    assert [s.label for s in crowd._tracker.speakers] == ["speaker 1", "Robin"]
    assert crowd._tracker.speakers[1].utterances == 1, "the dropped half was not counted"


def test_after_a_long_silence_the_voices_are_forgotten() -> None:
    crowd = Crowd(
        _Voices([voice(1), voice(2), voice(2)]),
        SpeakerTracker(0.75, "Celeste"),
        ReplyPolicy(ReplyPolicySettings(policy="always"), "Celeste"),
        forget_after_idle_s=900.0,
    )
    speech = np.zeros(16000, dtype=np.float32)
    assert crowd.hear(speech, "Hi", now=0.0).speaker == "speaker 1"
    assert crowd.hear(speech, "Hello", now=100.0).speaker == "speaker 2"
    assert crowd.hear(speech, "Anyone?", now=1100.0).speaker == "speaker 1", "a new session: voices forgotten"


def test_a_fact_told_by_one_speaker_is_not_attributed_to_another() -> None:
    context = MemoryContext(
        recollections=(Exchange("I have a dog named Rex.", "Nice!", "Robin"),),
        window=(Exchange("I live in Oslo.", "Cool.", "Sam"),),
    )
    for history in ("notes", "turns"):
        system = build_messages(
            "You are Celeste.", context, "Where do I live?", history=history, speaker="Sam"
        )[0].content
        assert "You are talking with Sam" in system
        if history == "notes":
            lines = system.splitlines()
            assert any(line.startswith("- Robin:") and "dog" in line for line in lines), system
            assert any(line.startswith("- Sam:") and "Oslo" in line for line in lines), system
            assert not any(line.startswith("- Sam:") and "dog" in line for line in lines), system
        else:
            assert 'Robin said "I have a dog named Rex."' in system, system
